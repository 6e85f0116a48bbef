package kafka

import (
	"context"
	"fmt"
	"strings"

	"github.com/exactly/exactly"
)

// OwnedError refuses a tool's write (Op: replay, reseed) to partitions a
// member of the pipeline's consumer group owns, or while the group
// rebalances: what the tool would write, a running pipeline would write
// too.
type OwnedError struct {
	Op, Group string
	Owned     []string // "topic[p] is owned by member…", in the order asked
	Busy      string   // the group is rebalancing; "" when not
}

func (e *OwnedError) Error() string {
	lines := e.Owned
	if e.Busy != "" {
		lines = append(lines[:len(lines):len(lines)], e.Busy+": it may hand the partitions out at any moment")
	}
	return fmt.Sprintf("%s refused: the pipeline is running: %s. Stop every member of consumer group %s (a member that stopped without leaving holds its partitions until source.session_timeout ends), then run %s again",
		e.Op, strings.Join(lines, "; "), e.Group, e.Op)
}

// RefuseOwned returns an *OwnedError when a member of group owns one of
// tps or the group is rebalancing, before op writes to them.
func (c *Client) RefuseOwned(ctx context.Context, group, op string, tps []exactly.TP) error {
	owners, busy, err := c.Owners(ctx, group, tps)
	if err != nil {
		return fmt.Errorf("checking who owns %s before %s: %w", tpsText(tps), op, err)
	}
	return ownedError(op, group, tps, owners, busy)
}

func ownedError(op, group string, tps []exactly.TP, owners map[exactly.TP]Owner, busy string) error {
	e := &OwnedError{Op: op, Group: group, Busy: busy}
	for _, tp := range tps {
		if o, ok := owners[tp]; ok {
			e.Owned = append(e.Owned, fmt.Sprintf("%s is owned by %s", tp, o))
		}
	}
	if len(e.Owned) == 0 && busy == "" {
		return nil
	}
	return e
}

func tpsText(tps []exactly.TP) string {
	s := make([]string, len(tps))
	for i, tp := range tps {
		s[i] = tp.String()
	}
	return strings.Join(s, " ")
}
