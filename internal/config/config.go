// Package config loads a service's configuration from environment variables (caarlos0/env struct
// tags) and documents those variables for --help, from the same tags, so the two never disagree.
package config

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/caarlos0/env/v11"
)

// Load parses the environment into a T, whose fields carry `env`, `envDefault` and `usage` tags.
func Load[T any]() (T, error) {
	cfg, err := env.ParseAs[T]()
	if err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

// Defaults is a T as the environment would give it with nothing set: the defaults of its tags.
// A required variable is an error.
func Defaults[T any]() (T, error) {
	var cfg T
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: map[string]string{}}); err != nil {
		return cfg, fmt.Errorf("configuration defaults: %w", err)
	}
	return cfg, nil
}

// Usage writes one line per variable of the struct type of cfg: name, default or "required", usage.
func Usage(w io.Writer, cfg any) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	usage(tw, reflect.TypeOf(cfg))
	tw.Flush()
}

// usage writes the lines of struct type t, those of its embedded structs in place.
func usage(tw io.Writer, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			usage(tw, f.Type)
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name == "" {
			continue
		}
		def := "(default " + f.Tag.Get("envDefault") + ")"
		if _, ok := f.Tag.Lookup("envDefault"); !ok {
			def = ""
		}
		if strings.Contains(opts, "required") {
			def = "(required)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, f.Tag.Get("usage"), def)
	}
}
