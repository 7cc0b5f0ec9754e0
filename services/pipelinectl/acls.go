package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/todocdc/pipeline/internal/acls"
)

func (a *app) aclsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "acls",
		Short:   "Apply the Kafka ACLs declared in topics/acls.yaml",
		Example: `  pipelinectl acls apply --dry-run`,
		Args:    cobra.ArbitraryArgs,
		RunE:    group,
	}
	cmd.AddCommand(a.aclsApplyCmd())
	return cmd
}

func (a *app) aclsApplyCmd() *cobra.Command {
	var (
		files  []string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Create the declared ACLs the cluster lacks, revoke those it has and the files do not declare",
		Long: `apply compares the ACLs declared in the files (their union) with every ACL of
the cluster: a declared ACL the cluster lacks is created, an ACL of the cluster
that no file declares is revoked (the files are the whole truth: a grant
removed from a file is removed from the cluster). A second run changes nothing
and says so. --dry-run prints the plan and changes nothing.

It needs a principal that may describe and alter ACLs (the local stack's
User:admin: --kafka-username admin, password in KAFKA_SASL_PASSWORD), and a
cluster with an authorizer.`,
		Example: `  pipelinectl acls apply --dry-run
  pipelinectl acls apply -f topics/acls.yaml -f e2e/acls.yaml
  pipelinectl acls apply -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			declared, err := acls.Load(files...)
			if err != nil {
				return err
			}
			admin, err := acls.NewAdmin(a.kafka, a.timeout)
			if err != nil {
				return err
			}
			defer admin.Close()
			plan, err := acls.Apply(cmd.Context(), admin, declared, dryRun)
			if err != nil && plan.Create == nil && plan.Revoke == nil && plan.Unchanged == nil {
				return err
			}
			type result struct {
				acls.Plan
				DryRun bool   `json:"dry_run"`
				NoOp   bool   `json:"no_op"`
				Error  string `json:"error,omitempty"`
			}
			res := result{Plan: plan, DryRun: dryRun, NoOp: plan.NoOp()}
			if err != nil {
				res.Error = err.Error()
			}
			if perr := a.emit(res, func(w io.Writer) { printACLPlan(w, plan, dryRun) }); perr != nil {
				return perr
			}
			if err != nil {
				return reported{err}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files, "file", "f", []string{acls.DefaultFile}, "ACL declaration (repeat for several: their union)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	return cmd
}

func printACLPlan(w io.Writer, p acls.Plan, dryRun bool) {
	created, revoked := "created", "revoked"
	if dryRun {
		created, revoked = "would create", "would revoke"
	}
	for _, b := range p.Create {
		fmt.Fprintf(w, "%s: %s\n", created, b)
	}
	for _, b := range p.Revoke {
		fmt.Fprintf(w, "%s: %s\n", revoked, b)
	}
	if p.NoOp() {
		fmt.Fprintf(w, "nothing to do: all %d ACLs are as declared\n", len(p.Unchanged))
		return
	}
	fmt.Fprintf(w, "%d %s, %d %s, %d unchanged\n", len(p.Create), created, len(p.Revoke), revoked, len(p.Unchanged))
}
