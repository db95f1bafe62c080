package graphapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/server"
)

// OData's query options on the answers, as Graph applies them:
//
//	$top=N        at most N items (1..999), and an @odata.nextLink with a
//	              $skiptoken to the next page; paged lists are ordered by id
//	              (keyset paging: an object created or deleted between two
//	              pages neither repeats nor hides another)
//	$skiptoken    where the previous page ended (only from a nextLink)
//	$select=a,b   only those properties (and the @odata.* annotations), on
//	              lists and on single objects; an unknown name is a 400
//	$count=true   @odata.count: the whole collection's size, on every page
//
// Without $top a list is whole (Graph would page at 100; the clients that
// use this surface follow nextLink either way).

// maxTop is Graph's largest page for directory objects.
const maxTop = 999

// graphTypes names the Graph type of each entity set a list or an object
// answers with (the last segment of its @odata.context), for $select's
// error.
var graphTypes = map[string]string{
	"applications": "application", "servicePrincipals": "servicePrincipal", "users": "user", "groups": "group",
	"directoryObjects": "directoryObject", "appRoleAssignments": "appRoleAssignment",
	"oauth2PermissionGrants": "oAuth2PermissionGrant", "organization": "organization",
	"federatedIdentityCredentials": "federatedIdentityCredential", "roleAssignments": "unifiedRoleAssignment",
}

func graphType(entity string) string {
	if t, ok := graphTypes[path.Base(entity)]; ok {
		return "microsoft.graph." + t
	}
	return "microsoft.graph." + path.Base(entity)
}

// list writes a Graph collection (value is a slice) with the query
// options above. entity is the collection's @odata.context after "#".
func list(w http.ResponseWriter, r *http.Request, entity string, value any) error {
	q := r.URL.Query()
	paged := r.Method == http.MethodGet // getByIds (POST) answers in one piece
	top, err := parseTop(q, paged)
	if err != nil {
		return err
	}
	after, skip, err := parseSkipToken(q, paged)
	if err != nil {
		return err
	}
	sel, err := parseSelect(q, graphType(entity), propsOf(value))
	if err != nil {
		return err
	}
	out := map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#" + entity + sel.context(),
		"value":          value,
	}
	n := reflect.ValueOf(value).Len()
	if strings.EqualFold(q.Get("$count"), "true") {
		out["@odata.count"] = n
	}
	if top == 0 && !skip && sel == nil {
		server.WriteJSON(w, http.StatusOK, out)
		return nil
	}
	type item struct {
		id   string // lower case: the paging order
		json json.RawMessage
	}
	items := make([]item, 0, n)
	for i := range n {
		b, err := json.Marshal(reflect.ValueOf(value).Index(i).Interface())
		if err != nil {
			return err
		}
		var o struct {
			ID string `json:"id"`
		}
		json.Unmarshal(b, &o)
		items = append(items, item{strings.ToLower(o.ID), b})
	}
	if top > 0 || skip {
		slices.SortStableFunc(items, func(a, b item) int { return strings.Compare(a.id, b.id) })
		if skip {
			i := slices.IndexFunc(items, func(it item) bool { return it.id > after })
			if i < 0 {
				i = len(items)
			}
			items = items[i:]
		}
		if top > 0 && len(items) > top {
			items = items[:top]
			out["@odata.nextLink"] = nextLink(r, items[top-1].id)
		}
	}
	page := make([]json.RawMessage, len(items))
	for i, it := range items {
		if page[i], err = sel.apply(it.json); err != nil {
			return err
		}
	}
	out["value"] = page
	server.WriteJSON(w, http.StatusOK, out)
	return nil
}

// entity writes one object (a view struct whose @odata.context, if any,
// ends in "/$entity") with $select applied.
func entity(w http.ResponseWriter, r *http.Request, entitySet string, v any) error {
	sel, err := parseSelect(r.URL.Query(), graphType(entitySet), propsOf(v))
	if err != nil {
		return err
	}
	if sel == nil {
		server.WriteJSON(w, http.StatusOK, v)
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if b, err = sel.apply(b); err != nil {
		return err
	}
	// Graph names the selection in the context: …#users(id,displayName)/$entity.
	b = bytes.Replace(b, []byte(`#`+entitySet+`/$entity"`), []byte(`#`+entitySet+sel.context()+`/$entity"`), 1)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	return nil
}

// parseTop reads $top: 0 when absent (or not paged), else 1..maxTop.
func parseTop(q url.Values, paged bool) (int, error) {
	s, ok := q["$top"]
	if !ok || !paged {
		return 0, nil
	}
	v := strings.TrimSpace(s[0])
	n, err := strconv.Atoi(v)
	if err != nil || strings.HasPrefix(v, "+") {
		return 0, gatehouse.BadRequestf(codeBadRequest, "Invalid value '%s' for $top query option found. The $top query option requires a non-negative integer value.", clip(s[0]))
	}
	if n < 1 || n > maxTop {
		return 0, gatehouse.BadRequestf(codeUnsupported, "Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", clip(v), maxTop)
	}
	return n, nil
}

// A $skiptoken is Graph's directory form, X'<hex>', of the last id of the
// page before: opaque to clients, which only copy it from a nextLink.
func skipToken(lastID string) string {
	return "X'" + strings.ToUpper(hex.EncodeToString([]byte(lastID))) + "'"
}

func parseSkipToken(q url.Values, paged bool) (after string, ok bool, err error) {
	s, present := q["$skiptoken"]
	if !present || !paged {
		return "", false, nil
	}
	bad := gatehouse.BadRequestf(codeBadRequest, "The specified page token value is invalid: use the @odata.nextLink of the previous page.")
	h, opened := strings.CutPrefix(s[0], "X'")
	h, closed := strings.CutSuffix(h, "'")
	if !opened || !closed || len(h) == 0 || len(h) > 512 {
		return "", false, bad
	}
	b, err := hex.DecodeString(h)
	if err != nil || !utf8.Valid(b) {
		return "", false, bad
	}
	return strings.ToLower(string(b)), true, nil
}

// nextLink is the request's own URL (at the host the client called, which
// it will call again) with $skiptoken for the page after lastID; the
// client's other options are kept as it spelled them.
func nextLink(r *http.Request, lastID string) string {
	var parts []string
	for p := range strings.SplitSeq(r.URL.RawQuery, "&") {
		k, _, _ := strings.Cut(p, "=")
		if k, err := url.QueryUnescape(k); p == "" || err == nil && k == "$skiptoken" {
			continue
		}
		parts = append(parts, p)
	}
	parts = append(parts, "$skiptoken="+url.QueryEscape(skipToken(lastID)))
	return "https://" + r.Host + r.URL.EscapedPath() + "?" + strings.Join(parts, "&")
}

// selection is a parsed $select: the properties kept, in the view's
// spelling; nil keeps everything.
type selection []string

func (s selection) context() string {
	if s == nil {
		return ""
	}
	return "(" + strings.Join(s, ",") + ")"
}

// parseSelect reads $select against known, the properties of the type
// (nil: any name is accepted, for a list whose type is not known).
func parseSelect(q url.Values, typ string, known []string) (selection, error) {
	v := strings.TrimSpace(q.Get("$select"))
	if v == "" || v == "*" {
		return nil, nil
	}
	var out selection
	for name := range strings.SplitSeq(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" || !validPropName(name) {
			return nil, gatehouse.BadRequestf(codeBadRequest, "Syntax error at position %d in '%s'.", len(v), clip(v))
		}
		if known != nil {
			p, ok := allowedProp(known, name)
			if !ok {
				return nil, gatehouse.BadRequestf(codeBadRequest, "Could not find a property named '%s' on type '%s'.", clip(name), typ)
			}
			name = p
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

func validPropName(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			return false
		}
	}
	return true
}

// apply keeps the selected members of the JSON object b, and its @odata.*
// annotations, in their order.
func (s selection) apply(b []byte) ([]byte, error) {
	if s == nil {
		return b, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteByte('{')
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		k, _ := t.(string)
		if !strings.HasPrefix(k, "@odata.") && !slices.ContainsFunc(s, func(p string) bool { return strings.EqualFold(p, k) }) {
			continue
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		out.Write(kb)
		out.WriteByte(':')
		out.Write(raw)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// propsOf lists the JSON properties (not the @odata.* annotations) of a
// view, or of a slice's elements: their struct type's, or for elements of
// an interface type, the union over the elements' own types. nil when
// they cannot be known (maps, an empty list of interfaces).
func propsOf(v any) []string {
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Slice {
		return structProps(t)
	}
	if t.Elem().Kind() != reflect.Interface {
		return structProps(t.Elem())
	}
	var out []string
	rv := reflect.ValueOf(v)
	for i := range rv.Len() {
		e := rv.Index(i)
		if e.IsNil() {
			continue
		}
		props := structProps(e.Elem().Type())
		if props == nil {
			return nil
		}
		for _, p := range props {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

func structProps(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	out := []string{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && name == "":
			out = append(out, structProps(f.Type)...)
		case name == "-" || !f.IsExported() || strings.HasPrefix(name, "@odata."):
		case name == "":
			out = append(out, f.Name)
		default:
			out = append(out, name)
		}
	}
	return out
}
