package gatehouse

import "testing"

func TestClientName(t *testing.T) {
	for _, tt := range []struct {
		p    Principal
		want string
	}{
		{Principal{Type: PrincipalServicePrincipal, ObjectID: "oid", ClientID: "appid", Name: "app"}, "appid"},
		{Principal{Type: PrincipalUser, ObjectID: "oid", Name: "ada@example.test"}, "ada@example.test"},
		{Principal{Type: PrincipalUser, ObjectID: "oid"}, "oid"},
		{Principal{Type: PrincipalGroup, ObjectID: "oid", Name: "team"}, "oid"},
	} {
		if got := tt.p.ClientName(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.p, got, tt.want)
		}
	}
}
