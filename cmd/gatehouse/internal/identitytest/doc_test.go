// Package identitytest holds the end-to-end tests of the identity authority:
// a real node (testenv) on SQLite and PostgreSQL, driven by the official
// azidentity credentials, raw HTTP for the negative tables, the Graph subset
// and the gatehouse CLI run in process (with this test binary re-executed
// as the command `gatehouse run --identity` starts).
package identitytest
