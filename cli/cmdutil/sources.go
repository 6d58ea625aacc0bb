package cmdutil

import (
	"os"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Kinds of Source, in precedence order.
const (
	SourceFlag    = "flag"
	SourceEnv     = "env"
	SourceFile    = "config file"
	SourceDefault = "default"
)

// Source says where a setting's value came from.
type Source struct {
	// Kind is SourceFlag, SourceEnv, SourceFile or SourceDefault.
	Kind string
	// Name is the flag ("--db"), the environment variable ("AISIX_DB") or
	// the config file key ("db"); "" for a default.
	Name string
}

// String is the source for people: "flag --db", "env AISIX_DB",
// "config file (db)", "default".
func (s Source) String() string {
	switch s.Kind {
	case SourceFile:
		return s.Kind + " (" + s.Name + ")"
	case SourceDefault, "":
		return SourceDefault
	}
	return s.Kind + " " + s.Name
}

// sources is where each setting of configKeys came from, by its key, as
// viper resolved it: a flag the user set, a non-empty bound environment
// variable (viper ignores empty ones), the config file, or the default.
// An admin key read through admin_key_env is from that variable.
func sources(v *viper.Viper, flags *pflag.FlagSet) map[string]Source {
	flagOf := make(map[string]string, len(flagKeys))
	for name, key := range flagKeys {
		flagOf[key] = name
	}
	out := make(map[string]Source, len(configKeys))
	for _, k := range configKeys {
		var s Source
		if name, ok := flagOf[k.key]; ok && flags != nil && flags.Changed(name) {
			s = Source{Kind: SourceFlag, Name: "--" + name}
		} else if k.env != "" && os.Getenv(k.env) != "" {
			s = Source{Kind: SourceEnv, Name: k.env}
		} else if v.InConfig(k.key) {
			s = Source{Kind: SourceFile, Name: k.key}
		} else {
			s = Source{Kind: SourceDefault}
		}
		out[k.key] = s
	}
	if v.GetString("admin_key") == "" {
		if env := v.GetString("admin_key_env"); env != "" && os.Getenv(env) != "" {
			out["admin_key"] = Source{Kind: SourceEnv, Name: env + " (admin_key_env)"}
		}
	}
	return out
}
