package audit

// EachBeforePaged is EachBefore with a page size small enough for a test
// to cross pages.
var EachBeforePaged = (*Log).eachBefore
