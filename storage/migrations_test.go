package storage_test

import (
	"testing"
	"testing/fstest"

	"github.com/aisix/aisix/storage"
)

func TestReadMigrations(t *testing.T) {
	file := func(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []int
		wantErr bool
	}{
		{"in order", fstest.MapFS{
			"migrations/0002_more.sql": file("B"),
			"migrations/0001_init.sql": file("A"),
		}, []int{1, 2}, false},
		{"gap", fstest.MapFS{
			"migrations/0001_init.sql": file("A"),
			"migrations/0003_skip.sql": file("C"),
		}, nil, true},
		{"duplicate", fstest.MapFS{
			"migrations/0001_init.sql":  file("A"),
			"migrations/0001_again.sql": file("B"),
		}, nil, true},
		{"no number", fstest.MapFS{
			"migrations/init.sql": file("A"),
		}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := storage.ReadMigrations(tt.fsys)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %d migrations, want an error", len(ms))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.Version)
			}
			if len(got) != len(tt.want) || got[0] != tt.want[0] || got[len(got)-1] != tt.want[len(tt.want)-1] {
				t.Errorf("versions = %v, want %v", got, tt.want)
			}
		})
	}
}
