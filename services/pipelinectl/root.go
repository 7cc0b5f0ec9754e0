package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/spf13/cobra"
	"github.com/todocdc/pipeline/kafkaconf"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// defaults are the global flags' defaults, taken from the environment.
type defaults struct {
	ConnectURL       string `env:"CONNECT_URL" envDefault:"http://127.0.0.1:8083"`
	kafkaconf.Client        // KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*
	RegistryURL      string `env:"SCHEMA_REGISTRY_URL" envDefault:"http://127.0.0.1:8081/apis/ccompat/v7"`
}

// app holds what every command shares: global flags, output streams, environment, logger.
type app struct {
	stdout, stderr io.Writer
	environ        map[string]string
	log            *slog.Logger

	connectURL  string
	kafka       kafkaconf.Client // --bootstrap-servers, --kafka-username; the password from the environment only
	registryURL string
	output      string
	timeout     time.Duration
	verbose     bool
	creds       credentials
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// reported marks an error whose details the command already printed to stdout: main only sets
// the exit code and logs a one-line summary.
type reported struct{ err error }

func (e reported) Error() string { return e.err.Error() }
func (e reported) Unwrap() error { return e.err }

// args wraps a cobra argument check so that its error is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// group is the RunE of a command that only holds subcommands: without one (or with an unknown
// one) it is a usage error.
func group(cmd *cobra.Command, a []string) error {
	if len(a) > 0 {
		return usagef("unknown command %q for %q", a[0], cmd.CommandPath())
	}
	return usagef("%s needs a subcommand", cmd.CommandPath())
}

func run(ctx context.Context, argv []string, stdout, stderr io.Writer, environ map[string]string) int {
	a := &app{stdout: stdout, stderr: stderr, environ: environ}
	a.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	root, err := a.rootCmd()
	if err != nil {
		a.log.Error("bad environment", "err", err)
		return exitUsage
	}
	root.SetArgs(argv)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	err = a.explain(err)
	var ue usageError
	var rep reported
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "Error: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitUsage
	case errors.As(err, &rep):
		a.log.Error(cmd.CommandPath()+" failed", "err", rep.err)
		return exitFailure
	default:
		a.emitError(cmd, err)
		a.log.Error(cmd.CommandPath()+" failed", "err", err)
		return exitFailure
	}
}

// errorResult is what a failed command prints on stdout with --output json when it printed no
// result of its own: a script reading stdout gets an object, not nothing.
type errorResult struct {
	Command string `json:"command"`
	Name    string `json:"name,omitempty"`
	Action  string `json:"action"`
	Error   string `json:"error"`
}

// emitError prints err as an errorResult (one line) with --output json. Name is the command's
// argument when it has exactly one (a connector, a topic). The dlq commands print their own.
func (a *app) emitError(cmd *cobra.Command, err error) {
	if a.output != "json" || cmd == nil || strings.HasPrefix(cmd.CommandPath(), "pipelinectl dlq") {
		return
	}
	res := errorResult{Command: strings.TrimPrefix(cmd.CommandPath(), "pipelinectl "), Action: "error", Error: err.Error()}
	if pos := cmd.Flags().Args(); len(pos) == 1 {
		res.Name = pos[0]
	}
	if werr := json.NewEncoder(a.stdout).Encode(res); werr != nil {
		a.log.Error("write result", "err", werr)
	}
}

func (a *app) rootCmd() (*cobra.Command, error) {
	var d defaults
	if err := env.ParseWithOptions(&d, env.Options{Environment: a.environ}); err != nil {
		return nil, err
	}
	root := &cobra.Command{
		Use:   "pipelinectl",
		Short: "Operate the todo CDC pipeline: topics, schemas, connectors, tail, tokens",
		Long: `pipelinectl applies what the repository declares to the running pipeline:
topics (topics/topics.yaml), Avro schemas (schemas/*.avsc, compatibility in
schemas/compatibility.yaml) and Kafka Connect connectors (connectors/*.json).
Every apply is idempotent: a second run changes nothing and says so.

Run it from the repository root (the default file paths are relative to it).
Results go to stdout, logs to stderr. Exit codes: 0 ok, 1 failure, 2 usage error.`,
		Example: `  eval "$(scripts/stack.sh env)"      # URLs of the local stack
  pipelinectl topics apply
  pipelinectl schemas register
  pipelinectl connectors apply
  pipelinectl connectors status -o json
  pipelinectl tail todos.task.events --since 10m`,
		Args:          cobra.ArbitraryArgs,
		RunE:          group,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != "text" && a.output != "json" {
				return usagef("--output must be text or json, got %q", a.output)
			}
			if a.timeout <= 0 {
				return usagef("--timeout must be positive, got %s", a.timeout)
			}
			if err := a.kafka.Validate(); err != nil {
				return usagef("%w", err)
			}
			if a.verbose {
				a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.connectURL, "connect-url", d.ConnectURL, "Kafka Connect REST URL (env CONNECT_URL)")
	a.kafka = d.Client
	pf.StringVar(&a.kafka.BootstrapServers, "bootstrap-servers", d.BootstrapServers, "Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS)")
	pf.StringVar(&a.kafka.Username, "kafka-username", d.Username,
		"Kafka SASL user (the principal pipelinectl acts as), password from env KAFKA_SASL_PASSWORD (env KAFKA_SASL_USERNAME)")
	pf.StringVar(&a.registryURL, "registry-url", d.RegistryURL, "Schema Registry URL, Confluent API (env SCHEMA_REGISTRY_URL)")
	pf.StringVarP(&a.output, "output", "o", "text", "result format: text or json")
	pf.DurationVar(&a.timeout, "timeout", 30*time.Second, "how long one request to a service may take")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "debug logs")
	a.credentialFlags(pf)
	// cobra's `completion bash|zsh|fish|powershell` stays on: shell completion of commands and flags
	root.AddCommand(a.versionCmd())

	root.AddCommand(a.connectorsCmd(), a.topicsCmd(), a.aclsCmd(), a.schemasCmd(), a.tokenCmd())
	root.AddCommand(a.tailCmd())
	root.AddCommand(a.dlqCmd())
	root.AddCommand(a.statusCmd(), a.traceCmd())
	return root, nil
}

// emit writes the result: v as indented JSON with --output json, else what text writes.
func (a *app) emit(v any, text func(w io.Writer)) error {
	if a.output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
		return nil
	}
	text(a.stdout)
	return nil
}

// indent prefixes every line of s.
func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix)
}
