// Package audit keeps Gatehouse's append-only, hash-chained audit log: one
// entry per management write (who, what, where, the result and the request
// id), and per data-plane denial when the gateway reports one.
//
// # Flow
//
//	handler → Log.Append(Entry) → storage.AppendAudit(build)
//	            build(seq, prev): Data = JSON(entry), Time = storage.Now(now)
//	                              Hash = SHA-256(domain ‖ seq ‖ time ‖ len(Data) ‖ Data ‖ prev)
//	operator → Log.Verify → walks every entry in order, recomputes each hash
//	                        and checks that it names its predecessor's hash
//
// The store serializes appends, so the chain never forks. An edited,
// reordered or deleted entry breaks the chain at that entry; Verify reports
// the first one that does not verify. Truncating the tail cannot be seen
// from inside the log: Verify returns the last sequence number and hash,
// which an operator can record elsewhere as an anchor.
//
// The management API serves the log (armapi/auditlog.go, `gatehouse audit
// list|verify`) to access administrators: Owner or User Access
// Administrator at the root or at a subscription.
//
// # No secrets
//
// An entry has typed fields only, and its Details map accepts only the
// names listed in AllowedDetails (key slot names, generations, role and
// principal ids, kinds, …). Append rejects any other detail name, so a key,
// a secret or a token cannot be written by accident, and tests catch a
// caller that tries.
package audit
