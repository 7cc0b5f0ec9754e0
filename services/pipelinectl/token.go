package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/todocdc/pipeline/internal/auth"
)

func (a *app) tokenCmd() *cobra.Command {
	var (
		user string
		ttl  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "token --user ID",
		Short: "Print a bearer token for a user, signed with $JWT_SECRET",
		Long: `token prints an HS256 bearer token of the todo API for the user, signed with
the secret in $JWT_SECRET (the local stack generates one: eval "$(scripts/stack.sh env)").
Only the token goes to stdout, so it can be captured.`,
		Example: `  pipelinectl token --user alice
  TOKEN=$(pipelinectl token --user alice --ttl 1h)
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/v1/todos`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return usagef("--user is required")
			}
			if ttl <= 0 {
				return usagef("--ttl must be positive, got %s", ttl)
			}
			secret := a.environ["JWT_SECRET"]
			if secret == "" {
				return errors.New("JWT_SECRET is not set (for the local stack: eval \"$(scripts/stack.sh env)\")")
			}
			keys, err := auth.NewKeys([]byte(secret))
			if err != nil {
				return fmt.Errorf("JWT_SECRET: %w", err)
			}
			now := time.Now()
			tok, err := keys.Issue(user, now, ttl)
			if err != nil {
				return usageError{fmt.Errorf("--user: %w", err)}
			}
			return a.emit(struct {
				Token     string    `json:"token"`
				User      string    `json:"user"`
				ExpiresAt time.Time `json:"expires_at"`
			}{tok, user, now.Add(ttl).UTC().Truncate(time.Second)}, func(w io.Writer) { fmt.Fprintln(w, tok) })
		},
	}
	cmd.Flags().StringVarP(&user, "user", "u", "", "user id, the token's subject (required)")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid")
	return cmd
}
