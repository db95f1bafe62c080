package authz

import (
	"strings"
	"sync"
	"time"
)

// RoleType says whether a role definition is Azure's or the operator's.
type RoleType string

const (
	BuiltInRole RoleType = "BuiltInRole"
	CustomRole  RoleType = "CustomRole"
)

// Permission is one block of a role definition. A block grants its Actions
// minus its NotActions and its DataActions minus its NotDataActions; a role
// grants the union of its blocks. Patterns may contain '*' wildcards and
// match case-insensitively, as in Azure.
type Permission struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

// RoleDefinition is a role: a name and what it permits.
type RoleDefinition struct {
	// ID is the role's GUID (lower case): its ARM name.
	ID               string       `json:"id"`
	RoleName         string       `json:"roleName"`
	Description      string       `json:"description,omitempty"`
	Type             RoleType     `json:"type"`
	Permissions      []Permission `json:"permissions"`
	AssignableScopes []string     `json:"assignableScopes"`
	CreatedOn        time.Time    `json:"createdOn,omitzero"`
	UpdatedOn        time.Time    `json:"updatedOn,omitzero"`
	CreatedBy        string       `json:"createdBy,omitempty"`
	UpdatedBy        string       `json:"updatedBy,omitempty"`
}

// Operation is what a caller wants to do: an ARM action
// ("Microsoft.CognitiveServices/accounts/listKeys/action") or a data action
// ("Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action").
// Actions and data actions are matched against different lists: an Owner
// ("*" in actions) has no data access.
type Operation struct {
	Name string
	Data bool
}

// Action returns the control-plane operation name.
func Action(name string) Operation { return Operation{Name: name} }

// DataAction returns the data-plane operation name.
func DataAction(name string) Operation { return Operation{Name: name, Data: true} }

func (o Operation) String() string { return o.Name }

// pattern is a compiled action pattern: its lower-cased text split at '*'.
type pattern struct {
	parts []string // len 1 = no wildcard
}

func compilePattern(p string) pattern {
	return pattern{parts: strings.Split(strings.ToLower(p), "*")}
}

// match reports whether s (already lower case) matches the pattern: the
// first part is a prefix, the last a suffix, the middle parts appear in
// order between them. Each '*' matches any run of characters, '/' included,
// as Azure's "*/read" and "Microsoft.CognitiveServices/*" do.
func (p pattern) match(s string) bool {
	parts := p.parts
	if len(parts) == 1 {
		return s == parts[0]
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

type compiledBlock struct {
	actions, notActions, dataActions, notDataActions []pattern
}

// compiledRole is a role ready for decisions.
type compiledRole struct {
	def    *RoleDefinition
	blocks []compiledBlock
}

func compileRole(def *RoleDefinition) *compiledRole {
	c := &compiledRole{def: def}
	all := func(ps []string) []pattern {
		out := make([]pattern, len(ps))
		for i, p := range ps {
			out[i] = compilePattern(p)
		}
		return out
	}
	for _, b := range def.Permissions {
		c.blocks = append(c.blocks, compiledBlock{
			actions: all(b.Actions), notActions: all(b.NotActions),
			dataActions: all(b.DataActions), notDataActions: all(b.NotDataActions),
		})
	}
	return c
}

// permits reports whether the role grants op; name is op.Name lower-cased.
func (c *compiledRole) permits(name string, data bool) bool {
	anyMatch := func(ps []pattern) bool {
		for _, p := range ps {
			if p.match(name) {
				return true
			}
		}
		return false
	}
	for _, b := range c.blocks {
		if data {
			if anyMatch(b.dataActions) && !anyMatch(b.notDataActions) {
				return true
			}
		} else if anyMatch(b.actions) && !anyMatch(b.notActions) {
			return true
		}
	}
	return false
}

// builtins is the compiled built-in roles by id and by lower-cased name.
var builtins = sync.OnceValue(func() (b struct {
	byID, byName map[string]*compiledRole
	list         []*compiledRole
}) {
	b.byID = make(map[string]*compiledRole)
	b.byName = make(map[string]*compiledRole)
	for _, r := range builtinRoles {
		r.Type = BuiltInRole
		r.AssignableScopes = []string{"/"}
		c := compileRole(r)
		b.byID[r.ID] = c
		b.byName[strings.ToLower(r.RoleName)] = c
		b.list = append(b.list, c)
	}
	return b
})

// BuiltInRoles returns the built-in role definitions. Callers must not
// modify them.
func BuiltInRoles() []*RoleDefinition {
	out := make([]*RoleDefinition, 0, len(builtinRoles))
	for _, c := range builtins().list {
		out = append(out, c.def)
	}
	return out
}
