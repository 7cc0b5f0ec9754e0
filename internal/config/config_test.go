package config

import (
	"strings"
	"testing"
	"time"
)

type sample struct {
	URL     string        `env:"SAMPLE_URL,required,notEmpty" usage:"where to connect"`
	Timeout time.Duration `env:"SAMPLE_TIMEOUT" envDefault:"5s" usage:"how long to wait"`
	Skipped string
}

func TestLoadAndUsage(t *testing.T) {
	t.Setenv("SAMPLE_URL", "postgres://x")
	cfg, err := Load[sample]()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URL != "postgres://x" || cfg.Timeout != 5*time.Second {
		t.Fatalf("got %+v", cfg)
	}

	var b strings.Builder
	Usage(&b, sample{})
	out := b.String()
	for _, want := range []string{"SAMPLE_URL", "where to connect", "(required)", "SAMPLE_TIMEOUT", "(default 5s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("usage lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Skipped") {
		t.Errorf("usage lists a field without env tag:\n%s", out)
	}
}

func TestLoadMissingRequired(t *testing.T) {
	t.Setenv("SAMPLE_URL", "")
	_, err := Load[sample]()
	if err == nil || !strings.Contains(err.Error(), "SAMPLE_URL") {
		t.Fatalf("want an error naming SAMPLE_URL, got %v", err)
	}
}

type embedding struct {
	sample
	Own string `env:"OWN" envDefault:"x" usage:"its own"`
}

// An embedded struct's variables are listed and read like the program's own.
func TestUsageAndDefaultsFollowEmbeddedStructs(t *testing.T) {
	var b strings.Builder
	Usage(&b, embedding{})
	for _, want := range []string{"SAMPLE_TIMEOUT", "(default 5s)", "OWN"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, b.String())
		}
	}
	type defaults struct {
		Timeout time.Duration `env:"SAMPLE_TIMEOUT" envDefault:"5s"`
		Own     string        `env:"OWN" envDefault:"x"`
	}
	t.Setenv("OWN", "from the environment")
	d, err := Defaults[defaults]()
	if err != nil || d.Timeout != 5*time.Second || d.Own != "x" {
		t.Fatalf("Defaults: %+v %v, want the tags' defaults whatever the environment says", d, err)
	}
	if _, err := Defaults[sample](); err == nil {
		t.Error("Defaults of a struct with a required variable: no error")
	}
}
