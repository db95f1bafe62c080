package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

// `gatehouse audit list|verify` reads and verifies the hash-chained audit
// log through the management API (armapi/auditlog.go): at the root scope
// (--root) or at a subscription (default: the profile's), which filters
// the list to entries within it. Both need an access administrator
// (Owner or User Access Administrator) at that scope.

const auditAPIVersion = "2022-04-01"

func newAuditCmd(env Env) *cobra.Command {
	g := newGroup("audit", "Read and verify the audit log (hash-chained record of every management write and data-plane denial)")
	g.AddCommand(newAuditListCmd(env), newAuditVerifyCmd(env))
	return g
}

// auditScope is --root / --subscription.
type auditScope struct {
	root bool
	sub  string
}

func (f *auditScope) add(c *cobra.Command) {
	c.Flags().BoolVar(&f.root, "root", false, "the root scope: the whole log (needs an access administrator at the root)")
	c.Flags().StringVar(&f.sub, "subscription", "", "subscription id (default: the profile's): the scope asked at, whose access administrators may ask (list keeps the entries within it)")
	addOutputFlags(c)
}

func (f *auditScope) path(c *apiClient, suffix string) (string, error) {
	p := "/providers/Microsoft.Authorization/auditLogs" + suffix
	if f.root {
		if f.sub != "" {
			return "", errors.New("give --root or --subscription, not both")
		}
		return p, nil
	}
	s := firstNonEmpty(f.sub, c.Profile.SubscriptionID)
	if s == "" {
		return "", errors.New("--subscription or --root is required (the profile has no default subscription)")
	}
	return "/subscriptions/" + url.PathEscape(s) + p, nil
}

func newAuditListCmd(env Env) *cobra.Command {
	var f auditScope
	var top int
	var after int64
	var all, newest bool
	cmd := &cobra.Command{Use: "list", Short: "List audit entries, oldest first (--newest: newest first)", Args: cobra.NoArgs,
		Example: `  gatehouse audit list --newest --top 20
  gatehouse audit list --root --after 1500 --all -o table`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if top < 1 && !all {
				return errors.New("--top must be at least 1")
			}
			if newest && after > 0 {
				return errors.New("--after follows the log oldest first; it cannot be combined with --newest")
			}
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.path(c, "")
			if err != nil {
				return err
			}
			page := min(top, 1000)
			if all {
				page = 1000
			}
			q := url.Values{"api-version": {auditAPIVersion}, "$top": {strconv.Itoa(page)}}
			if after > 0 {
				q.Set("$skipToken", strconv.FormatInt(after, 10))
			}
			if newest {
				q.Set("$orderby", "sequenceNumber desc")
			}
			next := p + "?" + q.Encode()
			entries := []any{}
			for next != "" && (all || len(entries) < top) {
				var res struct {
					Value    []any  `json:"value"`
					NextLink string `json:"nextLink"`
				}
				if err := c.Do(cmd.Context(), "GET", next, nil, &res); err != nil {
					return err
				}
				entries = append(entries, res.Value...)
				next = ""
				if res.NextLink != "" {
					u, err := url.Parse(res.NextLink)
					if err != nil {
						return fmt.Errorf("the server's nextLink does not parse: %w", err)
					}
					next = u.RequestURI()
				}
			}
			if !all && len(entries) > top {
				entries = entries[:top]
			}
			return printOutput(cmd, env.Stdout, entries)
		}}
	f.add(cmd)
	cmd.Flags().IntVar(&top, "top", 100, "at most this many entries")
	cmd.Flags().Int64Var(&after, "after", 0, "start after this sequence number")
	cmd.Flags().BoolVar(&all, "all", false, "every entry (ignores --top)")
	cmd.Flags().BoolVar(&newest, "newest", false, "newest entries first")
	return withTable(cmd, "[].{Seq: sequenceNumber, Time: time, Principal: principal.name || principal.objectId, Action: action, "+
		"Result: result, Status: status, Surface: surface, Scope: scope}")
}

func newAuditVerifyCmd(env Env) *cobra.Command {
	var f auditScope
	cmd := &cobra.Command{Use: "verify", Short: "Verify the whole audit chain; exits 1 when an entry was altered, removed or reordered", Args: cobra.NoArgs,
		Long: `Verify walks every entry of the audit log and recomputes its hash chain. It
prints the number of entries and the newest entry's sequence number and hash:
record them somewhere else, so that a truncated log can be told later (the
chain itself cannot show a removed tail). A broken chain prints the first
entry that does not verify and exits with status 1.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.path(c, "/verify")
			if err != nil {
				return err
			}
			var rep struct {
				Intact   bool   `json:"intact"`
				BrokenAt int64  `json:"brokenAt"`
				Reason   string `json:"reason"`
			}
			var raw []byte
			if err := c.Do(cmd.Context(), "POST", p+"?api-version="+auditAPIVersion, nil, &raw); err != nil {
				return err
			}
			var out any
			if err := json.Unmarshal(raw, &rep); err != nil {
				return fmt.Errorf("the verification report does not parse: %w", err)
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			if err := printOutput(cmd, env.Stdout, out); err != nil {
				return err
			}
			if !rep.Intact {
				return fmt.Errorf("the audit chain is broken at entry %d: %s", rep.BrokenAt, rep.Reason)
			}
			return nil
		}}
	f.add(cmd)
	return cmd
}
