package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// Options tune Load.
type Options struct {
	// Env looks up an environment variable (for ${VAR}, secret_env and
	// key_env); nil is os.LookupEnv.
	Env func(name string) (string, bool)
	// ReadFile reads a secret_file; nil is os.ReadFile.
	ReadFile func(path string) ([]byte, error)
	// AllowUnknown makes unknown fields warnings (File.Warnings) instead
	// of errors.
	AllowUnknown bool
	// Known are the names already in the store, which references may name
	// besides the file's own entries; nil is none.
	Known *Known
}

// Known are names a store holds.
type Known struct {
	ProviderKeys []string
	Models       []string
}

// Load parses and validates the resources document data (YAML or JSON);
// name is what errors call the file. The error, when there is one, is an
// Errors listing every problem with its line, column and field path.
func Load(name string, data []byte, opts Options) (*File, error) {
	if opts.Env == nil {
		opts.Env = os.LookupEnv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	d := &decoder{name: name, opts: opts, nodes: map[string]*yaml.Node{}, bad: map[string]bool{}}
	f := &File{}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{syntaxError(name, err)}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	d.root = root
	if root.Kind == 0 || root.Kind == yaml.DocumentNode || isNull(root) {
		d.errorf(root, "", "the file is empty: it needs at least _format_version: %q", FormatVersion)
	} else {
		d.decode(root, reflect.ValueOf(f).Elem(), "")
		d.validate(f)
	}
	f.Warnings = d.warnings
	if len(d.errs) > 0 {
		slices.SortStableFunc(d.errs, func(a, b Error) int {
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Column - b.Column
		})
		return nil, d.errs
	}
	return f, nil
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a YAML parse error into an Error with its line.
func syntaxError(name string, err error) Error {
	msg := err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Error{File: name, Line: line, Column: 1, Msg: "syntax error: " + m[2]}
	}
	return Error{File: name, Msg: "syntax error: " + strings.TrimPrefix(msg, "yaml: ")}
}

// decoder walks the YAML nodes into a File, recording the node of every
// field path for the errors found later.
type decoder struct {
	name     string
	opts     Options
	root     *yaml.Node
	nodes    map[string]*yaml.Node
	errs     Errors
	warnings Errors
	// bad marks the paths whose ${VAR} could not be substituted.
	bad map[string]bool
}

func (d *decoder) errorf(n *yaml.Node, path, format string, a ...any) {
	d.errs = append(d.errs, d.at(n, path, fmt.Sprintf(format, a...)))
}

func (d *decoder) at(n *yaml.Node, path, msg string) Error {
	e := Error{File: d.name, Path: path, Msg: msg}
	if n != nil && n.Line > 0 {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

// node is the node of path or of its closest recorded parent.
func (d *decoder) node(path string) *yaml.Node {
	for path != "" {
		if n, ok := d.nodes[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return d.root
}

var timeType = reflect.TypeFor[time.Time]()

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// decode sets v from n, reporting what does not fit at n's position.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	d.nodes[path] = n
	if isNull(n) {
		return
	}
	if n.Kind == yaml.ScalarNode {
		d.substitute(n, path)
	}
	switch {
	case v.Kind() == reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case v.Type() == timeType:
		t, err := time.Parse(time.RFC3339Nano, n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.errorf(n, path, "must be an RFC 3339 time such as 2027-01-01T00:00:00Z")
			return
		}
		v.Set(reflect.ValueOf(t))
	case v.Kind() == reflect.Struct:
		d.decodeStruct(n, v, path)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "must be a list")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case v.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "must be a string")
			return
		}
		v.SetString(n.Value)
	default:
		if n.Kind != yaml.ScalarNode || n.Decode(v.Addr().Interface()) != nil {
			d.errorf(n, path, "must be %s", kindName(v.Kind()))
		}
	}
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "an integer"
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping of fields")
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		sub := join(path, key.Value)
		if seen[key.Value] {
			d.errorf(key, sub, "is given twice")
			continue
		}
		seen[key.Value] = true
		idx, ok := fields[key.Value]
		if !ok {
			d.unknown(key, sub)
			continue
		}
		d.decode(val, v.Field(idx), sub)
	}
}

func (d *decoder) unknown(key *yaml.Node, path string) {
	msg := "unknown field"
	if strings.HasSuffix(path, ".provider_key_id") {
		msg += " (name the provider key with provider_key: <display name>)"
	}
	if d.opts.AllowUnknown {
		d.warnings = append(d.warnings, d.at(key, path, msg+", ignored"))
		return
	}
	d.errorf(key, path, "%s", msg)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

var fieldCache sync.Map // reflect.Type → map[string]int

// fieldsOf maps the JSON names of t's fields to their indexes.
func fieldsOf(t reflect.Type) map[string]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := map[string]int{}
	for i := range t.NumField() {
		if name := jsonName(t.Field(i)); name != "" {
			m[name] = i
		}
	}
	fieldCache.Store(t, m)
	return m
}

// jsonName is the JSON name of a field, "" for one that is not part of
// the document.
func jsonName(sf reflect.StructField) string {
	if !sf.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
	if name == "-" || name == "" {
		return ""
	}
	return name
}

var varRe = regexp.MustCompile(`\$\$\{|\$\{([^}]*)\}?`)
var varNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// substitute replaces ${VAR} in a string scalar with the variable's value
// and $${ with a literal ${, reporting a missing variable.
func (d *decoder) substitute(n *yaml.Node, path string) {
	if n.ShortTag() != "!!str" || !strings.Contains(n.Value, "${") {
		return
	}
	errs := len(d.errs)
	defer func() { d.bad[path] = len(d.errs) > errs }()
	out := varRe.ReplaceAllStringFunc(n.Value, func(m string) string {
		if m == "$${" {
			return "${"
		}
		if !strings.HasSuffix(m, "}") {
			d.errorf(n, path, "unterminated ${ (write $${ for a literal ${)")
			return m
		}
		name := m[2 : len(m)-1]
		if !varNameRe.MatchString(name) {
			d.errorf(n, path, "%q is not a variable name (write $${ for a literal ${)", name)
			return m
		}
		val, ok := d.opts.Env(name)
		if !ok {
			d.errorf(n, path, "environment variable %s is not set (used as ${%s})", name, name)
			return m
		}
		return val
	})
	if out != n.Value {
		n.Value = out
		if n.Style == 0 {
			n.Tag = "" // a plain scalar is resolved again: timeout: ${T} is a number
		}
	}
}

// lookupEnv reads a variable named by secret_env or key_env.
func (d *decoder) lookupEnv(path, name string) (string, bool) {
	if !varNameRe.MatchString(name) {
		d.errorf(d.node(path), path, "%q is not an environment variable name", name)
		return "", false
	}
	v, ok := d.opts.Env(name)
	switch {
	case !ok:
		d.errorf(d.node(path), path, "environment variable %s is not set", name)
	case v == "":
		d.errorf(d.node(path), path, "environment variable %s is empty", name)
	}
	return v, ok && v != ""
}

// relativeToFile is path made absolute against the resources file's
// directory ("" stays ""), so the store holds a path the gateway can open
// wherever it runs from.
func (d *decoder) relativeToFile(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	p := filepath.Join(filepath.Dir(d.name), path)
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// readSecretFile reads a secret_file, relative to the resources file.
func (d *decoder) readSecretFile(path, file string) (string, bool) {
	if !filepath.IsAbs(file) {
		file = filepath.Join(filepath.Dir(d.name), file)
	}
	b, err := d.opts.ReadFile(file)
	if err != nil {
		d.errorf(d.node(path), path, "read %s: %v", file, unwrapPathError(err))
		return "", false
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		d.errorf(d.node(path), path, "%s is empty", file)
		return "", false
	}
	return s, true
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// hashKey is the stored form of a caller key's plaintext.
func hashKey(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}
