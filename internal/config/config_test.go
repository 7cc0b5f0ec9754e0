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
