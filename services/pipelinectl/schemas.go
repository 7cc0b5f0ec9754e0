package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/todocdc/pipeline/internal/events"
	"github.com/todocdc/pipeline/internal/registry"
	"github.com/todocdc/pipeline/schemas"
)

func (a *app) schemasCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "schemas",
		Short:   "Register the event schemas (schemas/*.avsc) in the Schema Registry",
		Example: `  pipelinectl schemas register`,
		Args:    cobra.ArbitraryArgs,
		RunE:    group,
	}
	cmd.AddCommand(a.schemasRegisterCmd())
	return cmd
}

func (a *app) schemasRegisterCmd() *cobra.Command {
	var compatFile string
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register every event schema and set each subject's compatibility level",
		Long: `register registers every .avsc built into this binary (schemas/) under the
subject "` + events.Topic + `-<namespace>.<name>", each after the earlier
versions of its record kept in schemas/history (<Record>.v<N>.avsc, in the
order of N), so that a fresh registry ends with every version; and sets the subject's
compatibility level from schemas/compatibility.yaml (built in; --compatibility
reads another file). An identical schema that is already registered keeps its
id and version. A schema the registry refuses (409, incompatible with the
subject's rule) is printed with the registry's message, and the command exits 1
after trying the others.`,
		Example: `  pipelinectl schemas register
  pipelinectl schemas register --compatibility my-compatibility.yaml -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			policyData := schemas.Compatibility
			if compatFile != "" {
				data, err := os.ReadFile(compatFile)
				if err != nil {
					return fmt.Errorf("read compatibility file: %w", err)
				}
				policyData = data
			}
			policy, err := registry.ParsePolicy(policyData)
			if err != nil {
				return err
			}
			list, err := registry.LoadWithHistory(schemas.FS, events.Topic)
			if err != nil {
				return err
			}
			for _, s := range policy.Unknown(list) {
				a.log.Warn("compatibility override for a subject no schema has", "subject", s)
			}
			client := a.registryClient()
			client.CachingEnabled(false)
			results, err := registry.Register(cmd.Context(), client, list, policy)
			if results == nil && err != nil {
				return err
			}
			if perr := a.emit(results, func(w io.Writer) { printRegistered(w, results) }); perr != nil {
				return perr
			}
			if errors.Is(err, registry.ErrRefused) {
				return reported{err}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&compatFile, "compatibility", "", "compatibility levels file (default: the built-in schemas/compatibility.yaml)")
	return cmd
}

func printRegistered(w io.Writer, results []registry.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tFILE\tID\tVERSION\tLEVEL\tOUTCOME")
	for _, r := range results {
		if r.Outcome == registry.Refused {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t%s\trefused: %s\n", r.Subject, r.File, r.Level, r.Message)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", r.Subject, r.File, r.ID, r.Version, r.Level, r.Outcome)
	}
	tw.Flush()
}
