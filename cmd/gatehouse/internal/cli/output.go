package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/jmespath/go-jmespath"
	"github.com/spf13/cobra"
)

// addOutputFlags adds az's -o/--output (json, table, tsv, none) and
// --query (JMESPath) to cmd. Commands then print with printOutput.
func addOutputFlags(cmd *cobra.Command) {
	cmd.Flags().StringP("output", "o", "json", "output format: json, table, tsv or none")
	cmd.Flags().String("query", "", "JMESPath query applied to the output (as in az)")
}

// tableQuery is the annotation of a command's -o table view: a JMESPath
// query applied when -o table comes without --query.
const tableQuery = "gatehouse/table-query"

// withTable sets cmd's -o table view.
func withTable(cmd *cobra.Command, query string) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[tableQuery] = query
	return cmd
}

// printOutput prints v (any JSON-encodable value) to w in the format and
// with the query the command's flags ask for. Table and TSV show scalar
// fields only, name/displayName/id first, then the rest by name.
func printOutput(cmd *cobra.Command, w io.Writer, v any) error {
	format, _ := cmd.Flags().GetString("output")
	query, _ := cmd.Flags().GetString("query")
	if format == "" {
		format = "json"
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	if format == "table" && query == "" {
		// A command whose items keep what identifies them in nested
		// objects says what its table shows, as az's table transformers do.
		query = cmd.Annotations[tableQuery]
	}
	if query != "" {
		jp, err := jmespath.Compile(legacyLiterals(query))
		if err != nil {
			return fmt.Errorf("--query: %v", err)
		}
		if doc, err = jp.Search(doc); err != nil {
			return fmt.Errorf("--query: %v", err)
		}
	}
	switch format {
	case "json", "jsonc":
		out, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", out)
		return err
	case "table":
		return printTable(w, doc, hashKeys(query))
	case "tsv":
		return printTSV(w, doc, hashKeys(query))
	case "none":
		return nil
	}
	return fmt.Errorf("--output: %q is not json, table, tsv or none", format)
}

// hashKeys returns the keys of the query's last multiselect hash
// ({n:name, l:location}), in the order written: JMESPath hands the hash
// back as a map, and az's table and tsv keep the query's order (a script
// reading -o tsv columns depends on it). nil when there is none.
func hashKeys(query string) []string {
	open, depth := -1, 0
	structure(query, 0, func(i int, c byte) bool {
		switch c {
		case '[', '(':
			depth++
		case ']', ')', '}':
			depth--
		case '{':
			if depth == 0 {
				open = i
			}
			depth++
		}
		return true
	})
	if open < 0 {
		return nil
	}
	var keys []string
	start, done := open+1, false
	depth = 0
	structure(query, open+1, func(i int, c byte) bool {
		switch {
		case c == '[' || c == '(' || c == '{':
			depth++
		case (c == ']' || c == ')' || c == '}') && depth > 0:
			depth--
		case (c == ',' || c == '}') && depth == 0:
			if k, _, ok := strings.Cut(query[start:i], ":"); ok {
				keys = append(keys, strings.Trim(strings.TrimSpace(k), `"`))
			}
			start, done = i+1, c == '}'
			return !done
		}
		return true
	})
	if !done {
		return nil
	}
	return keys
}

// structure calls fn with each byte of query from index from that is
// outside its string and literal quotes ('…', "…", `…`), until fn
// returns false.
func structure(query string, from int, fn func(i int, c byte) bool) {
	var quote byte
	for i := from; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		default:
			if !fn(i, c) {
				return
			}
		}
	}
}

// rows turns a document into a header and rows of scalars; columns named
// in order come first, in that order.
func rows(doc any, order []string) ([]string, [][]string) {
	var items []any
	switch d := doc.(type) {
	case []any:
		items = d
	case nil:
		return nil, nil
	default:
		items = []any{d}
	}
	var cols []string
	seen := map[string]bool{}
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			for k, v := range m {
				if isScalar(v) && !seen[k] {
					seen[k] = true
					cols = append(cols, k)
				}
			}
		}
	}
	sort.Slice(cols, func(i, j int) bool {
		oi, oj := slices.Index(order, cols[i]), slices.Index(order, cols[j])
		if oi >= 0 || oj >= 0 {
			return oj < 0 || oi >= 0 && oi < oj
		}
		ri, rj := colRank(cols[i]), colRank(cols[j])
		if ri != rj {
			return ri < rj
		}
		return cols[i] < cols[j]
	})
	var out [][]string
	width := 0 // of the widest list row (a --query multiselect list: [].[a, b])
	for _, it := range items {
		if l, ok := it.([]any); ok {
			row := make([]string, len(l))
			for i, v := range l {
				row[i] = scalarString(v)
			}
			out = append(out, row)
			width = max(width, len(row))
			continue
		}
		m, ok := it.(map[string]any)
		if !ok {
			out = append(out, []string{scalarString(it)})
			continue
		}
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = scalarString(m[c])
		}
		out = append(out, row)
	}
	if len(cols) == 0 {
		// az names a multiselect list's columns Column1, Column2, ...
		for i := range width {
			cols = append(cols, fmt.Sprintf("Column%d", i+1))
		}
	}
	return cols, out
}

func colRank(c string) int {
	switch c {
	case "name":
		return 0
	case "displayName":
		return 1
	case "id":
		return 2
	case "appId":
		return 3
	}
	return 4
}

func isScalar(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}

func scalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func printTable(w io.Writer, doc any, order []string) error {
	cols, data := rows(doc, order)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(cols) > 0 {
		head := make([]string, len(cols))
		rule := make([]string, len(cols))
		for i, c := range cols {
			head[i] = titleCase(c)
			rule[i] = strings.Repeat("-", len(head[i]))
		}
		fmt.Fprintln(tw, strings.Join(head, "\t"))
		fmt.Fprintln(tw, strings.Join(rule, "\t"))
	}
	for _, r := range data {
		for len(r) < len(cols) { // a short row still ends every column
			r = append(r, "")
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func printTSV(w io.Writer, doc any, order []string) error {
	_, data := rows(doc, order)
	for _, r := range data {
		if _, err := fmt.Fprintln(w, strings.Join(r, "\t")); err != nil {
			return err
		}
	}
	return nil
}

// titleCase turns "displayName" into "DisplayName" (az's table headers).
func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// listCall GETs an ARM list at p and prints its value array.
func listCall(cmd *cobra.Command, env Env, c *apiClient, p string) error {
	var list struct {
		Value []any `json:"value"`
	}
	if err := c.Do(cmd.Context(), "GET", p, nil, &list); err != nil {
		return err
	}
	if list.Value == nil {
		list.Value = []any{}
	}
	return printOutput(cmd, env.Stdout, list.Value)
}

// providerListCall lists Microsoft.CognitiveServices' rel (a path and
// query under the provider) in f's subscription, as listCall prints.
func providerListCall(cmd *cobra.Command, env Env, f *armFlags, rel string) error {
	c, err := newAPIClient(cmd, env)
	if err != nil {
		return err
	}
	s, err := f.subscription(c)
	if err != nil {
		return err
	}
	return listCall(cmd, env, c, "/subscriptions/"+url.PathEscape(s)+"/providers/Microsoft.CognitiveServices/"+rel)
}

// legacyLiterals rewrites the JSON literals of query (`…`) that are not
// JSON into JSON strings, as az's jmespath does (JEP 12's deprecated
// form, which az users write: [?kind==`TextAnalytics`]). Raw strings
// ('…') and quoted names ("…") are passed over; \` inside a literal is a
// backtick.
func legacyLiterals(query string) string {
	var b strings.Builder
	for i := 0; i < len(query); i++ {
		c := query[i]
		if c == '\'' || c == '"' {
			j := i + 1
			for j < len(query) && query[j] != c {
				if query[j] == '\\' {
					j++
				}
				j++
			}
			b.WriteString(query[i:min(j+1, len(query))])
			i = j
			continue
		}
		if c != '`' {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(query) && query[j] != '`' {
			if query[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(query) {
			b.WriteString(query[i:]) // unterminated: the parser says so
			break
		}
		lit := strings.ReplaceAll(query[i+1:j], "\\`", "`")
		if json.Valid([]byte(lit)) {
			b.WriteString(query[i : j+1])
		} else {
			quoted, _ := json.Marshal(strings.TrimLeft(lit, " \t\r\n")) // as jmespath.py: lstrip
			b.WriteString("`" + strings.ReplaceAll(string(quoted), "`", "\\`") + "`")
		}
		i = j
	}
	return b.String()
}
