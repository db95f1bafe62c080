package gatehouse

import (
	"fmt"
	"strings"
)

// ResourceID is a parsed Azure Resource Manager id or scope:
//
//	/subscriptions/{sub}
//	/subscriptions/{sub}/resourceGroups/{rg}
//	/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{type}/{name}...]
//	/subscriptions/{sub}/providers/{ns}/{type}/{name}
//	{any of the above}/providers/{ns}/{type}/{name}   (extension resource)
//	/providers/{ns}/{type}/{name}                       (tenant level)
//	/                                                   (root scope)
//
// Names keep the case they were given; comparisons are case-insensitive, as
// in ARM. The zero value is the root scope "/".
type ResourceID struct {
	// Scope is set for an extension resource (a role assignment on an
	// account): the resource the extension hangs off. Its own Subscription
	// and ResourceGroup are copied from the scope for convenience.
	Scope *ResourceID

	Subscription  string
	ResourceGroup string
	// Namespace is the resource provider ("Microsoft.CognitiveServices").
	Namespace string
	// Types and Names alternate: accounts/{a}/deployments/{d} gives
	// Types ["accounts","deployments"], Names [a, d].
	Types []string
	Names []string
}

// MaxResourceIDLength bounds what ParseResourceID accepts.
const MaxResourceIDLength = 2048

// ParseResourceID parses an ARM id or scope. It accepts a missing leading
// slash (az and armauthorization insert scopes unescaped and without one) and
// a single trailing slash, and is case-insensitive in its keywords.
func ParseResourceID(s string) (*ResourceID, error) {
	if len(s) > MaxResourceIDLength {
		return nil, fmt.Errorf("resource id longer than %d characters", MaxResourceIDLength)
	}
	t := strings.TrimPrefix(s, "/")
	t = strings.TrimSuffix(t, "/")
	if t == "" {
		return &ResourceID{}, nil
	}
	segs := strings.Split(t, "/")
	for _, seg := range segs {
		if seg == "" {
			return nil, fmt.Errorf("resource id %q has an empty segment", s)
		}
		if !validSegment(seg) {
			return nil, fmt.Errorf("resource id %q has an invalid segment", s)
		}
	}
	id := &ResourceID{}
	i := 0
	if strings.EqualFold(segs[0], "subscriptions") {
		if len(segs) < 2 {
			return nil, fmt.Errorf("resource id %q names no subscription", s)
		}
		id.Subscription = segs[1]
		i = 2
		if i < len(segs) && strings.EqualFold(segs[i], "resourceGroups") {
			if i+1 >= len(segs) {
				return nil, fmt.Errorf("resource id %q names no resource group", s)
			}
			id.ResourceGroup = segs[i+1]
			i += 2
		}
	}
	for i < len(segs) {
		if !strings.EqualFold(segs[i], "providers") {
			return nil, fmt.Errorf("resource id %q: expected 'providers' at segment %d", s, i+1)
		}
		if i+1 >= len(segs) {
			return nil, fmt.Errorf("resource id %q names no provider namespace", s)
		}
		// Types and names follow until the next "providers" keyword that
		// starts an extension; a name may itself be "providers" only in the
		// name position, which this loop handles by pairing.
		ns := segs[i+1]
		j := i + 2
		var types, names []string
		for j < len(segs) && !strings.EqualFold(segs[j], "providers") {
			if j+1 >= len(segs) {
				// A trailing type with no name is a collection path, not an id.
				return nil, fmt.Errorf("resource id %q: type %q has no name", s, segs[j])
			}
			types = append(types, segs[j])
			names = append(names, segs[j+1])
			j += 2
		}
		if len(types) == 0 {
			return nil, fmt.Errorf("resource id %q: provider %q has no resource type", s, ns)
		}
		if id.Namespace != "" {
			// Extension resource: what we have so far becomes the scope.
			scope := *id
			id = &ResourceID{Scope: &scope, Subscription: scope.Subscription, ResourceGroup: scope.ResourceGroup}
		}
		id.Namespace, id.Types, id.Names = ns, types, names
		i = j
	}
	return id, nil
}

func validSegment(seg string) bool {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c < 0x20 || c == 0x7f || c == '?' || c == '#' || c == '\\' {
			return false
		}
	}
	return true
}

// String returns the canonical form, with ARM's keyword casing and the
// names as given.
func (id *ResourceID) String() string {
	if id == nil {
		return "/"
	}
	var b strings.Builder
	id.write(&b)
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

func (id *ResourceID) write(b *strings.Builder) {
	if id.Scope != nil {
		id.Scope.write(b)
	} else {
		if id.Subscription != "" {
			b.WriteString("/subscriptions/")
			b.WriteString(id.Subscription)
		}
		if id.ResourceGroup != "" {
			b.WriteString("/resourceGroups/")
			b.WriteString(id.ResourceGroup)
		}
	}
	if id.Namespace != "" {
		b.WriteString("/providers/")
		b.WriteString(id.Namespace)
		for i := range id.Types {
			b.WriteString("/")
			b.WriteString(id.Types[i])
			b.WriteString("/")
			b.WriteString(id.Names[i])
		}
	}
}

// Key is the lower-cased canonical form: equal for ids ARM considers equal.
// Use it as a storage key and for comparisons.
func (id *ResourceID) Key() string { return strings.ToLower(id.String()) }

// Type is the full resource type, "Microsoft.CognitiveServices/accounts" or
// "Microsoft.CognitiveServices/accounts/deployments". It is "" for
// subscriptions, resource groups and the root scope.
func (id *ResourceID) Type() string {
	if id.Namespace == "" {
		return ""
	}
	return id.Namespace + "/" + strings.Join(id.Types, "/")
}

// Name is the last name in the id: the resource, group or subscription.
func (id *ResourceID) Name() string {
	switch {
	case len(id.Names) > 0:
		return id.Names[len(id.Names)-1]
	case id.ResourceGroup != "":
		return id.ResourceGroup
	default:
		return id.Subscription
	}
}

// IsResourceGroup reports whether id is exactly a resource group.
func (id *ResourceID) IsResourceGroup() bool {
	return id.Scope == nil && id.Namespace == "" && id.ResourceGroup != ""
}

// IsSubscription reports whether id is exactly a subscription.
func (id *ResourceID) IsSubscription() bool {
	return id.Scope == nil && id.Namespace == "" && id.ResourceGroup == "" && id.Subscription != ""
}

// IsRoot reports whether id is the root scope "/".
func (id *ResourceID) IsRoot() bool { return id.String() == "/" }

// Parent returns the enclosing scope: a child resource's parent resource, a
// top-level resource's group (or subscription), a group's subscription, an
// extension's scope. The root's parent is nil.
func (id *ResourceID) Parent() *ResourceID {
	switch {
	case len(id.Types) > 1:
		p := *id
		p.Types = id.Types[:len(id.Types)-1]
		p.Names = id.Names[:len(id.Names)-1]
		return &p
	case len(id.Types) == 1 && id.Scope != nil:
		return id.Scope
	case len(id.Types) == 1:
		return &ResourceID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup}
	case id.ResourceGroup != "":
		return &ResourceID{Subscription: id.Subscription}
	case id.Subscription != "":
		return &ResourceID{}
	default:
		return nil
	}
}

// Ancestors returns every scope from the root down to id itself, in order.
// Role assignments at any of them apply to id.
func (id *ResourceID) Ancestors() []*ResourceID {
	var out []*ResourceID
	for p := id; p != nil; p = p.Parent() {
		out = append(out, p)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Within reports whether id is scope or lies beneath it (case-insensitive).
func (id *ResourceID) Within(scope *ResourceID) bool {
	s := scope.Key()
	k := id.Key()
	if s == "/" {
		return true
	}
	return k == s || strings.HasPrefix(k, s+"/")
}

// Child returns the id of a child resource of id: typ and name are appended
// under id's provider, or, when id has no provider (a group), under ns.
func (id *ResourceID) Child(ns, typ, name string) *ResourceID {
	c := *id
	if c.Namespace == "" {
		c.Namespace = ns
	}
	c.Types = append(append([]string(nil), id.Types...), typ)
	c.Names = append(append([]string(nil), id.Names...), name)
	return &c
}

// Extension returns the id of an extension resource (ns/typ/name) on id.
func (id *ResourceID) Extension(ns, typ, name string) *ResourceID {
	scope := *id
	return &ResourceID{Scope: &scope, Subscription: id.Subscription, ResourceGroup: id.ResourceGroup,
		Namespace: ns, Types: []string{typ}, Names: []string{name}}
}
