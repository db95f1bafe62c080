package armapi

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// pageMaxTop is the largest $top of the lists pageOf serves, as ARM's.
const pageMaxTop = 1000

// pageOf is one page of a list that ARM pages by $top: all ordered by key
// (case-insensitively), after the $skiptoken (the key of the previous
// page's last item), at most $top items, and the nextLink to the rest ("" at
// the end). Without $top one page holds everything, as before ARM's SDK
// pagers asked for less. A $top outside 1-1000 is 400
// InvalidTopInQueryString, as ARM's.
func pageOf[T any](c *call, all []T, key func(T) string) ([]T, string, error) {
	q := c.r.URL.Query()
	top := 0
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > pageMaxTop {
			return nil, "", gatehouse.BadRequestf("InvalidTopInQueryString",
				"The value '%s' of $top is not valid: give a number from 1 to %d.", clip(t), pageMaxTop).WithTarget("$top")
		}
		top = n
	}
	slices.SortStableFunc(all, func(a, b T) int { return strings.Compare(strings.ToLower(key(a)), strings.ToLower(key(b))) })
	after := strings.ToLower(q.Get("$skiptoken"))
	i := 0
	if after != "" {
		i, _ = slices.BinarySearchFunc(all, after, func(t T, after string) int {
			if strings.ToLower(key(t)) <= after {
				return -1
			}
			return 1
		})
	}
	page := all[i:]
	if top == 0 || len(page) <= top {
		return page, "", nil
	}
	page = page[:top]
	next := url.Values{"api-version": {q.Get("api-version")}, "$top": {strconv.Itoa(top)}, "$skiptoken": {key(page[top-1])}}
	return page, "https://" + c.r.Host + c.r.URL.EscapedPath() + "?" + next.Encode(), nil
}
