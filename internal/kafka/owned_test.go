package kafka

import (
	"errors"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

func TestOwnedErrorNamesOwnersAndARebalance(t *testing.T) {
	a0 := exactly.TP{Topic: "a", Partition: 0}
	a1 := exactly.TP{Topic: "a", Partition: 1}
	owners := map[exactly.TP]Owner{a1: {Member: "m1", Client: "exactly", Host: "/10.0.0.1"}}
	if err := ownedError("replay", "g", []exactly.TP{a0}, owners, ""); err != nil {
		t.Fatalf("no owner of a[0], no rebalance: got %v, want nil", err)
	}
	err := ownedError("replay", "g", []exactly.TP{a0, a1}, owners, "consumer group g is in state PreparingRebalance with 1 member(s)")
	var owned *OwnedError
	if !errors.As(err, &owned) || len(owned.Owned) != 1 {
		t.Fatalf("got %v, want an *OwnedError naming a[1]", err)
	}
	want := "replay refused: the pipeline is running: a[1] is owned by member m1 of client exactly on /10.0.0.1; " +
		"consumer group g is in state PreparingRebalance with 1 member(s): it may hand the partitions out at any moment. " +
		"Stop every member of consumer group g (a member that stopped without leaving holds its partitions until source.session_timeout ends), then run replay again"
	if got := err.Error(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if err.Error() != err.Error() || len(owned.Owned) != 1 {
		t.Error("Error() changed the error")
	}
	if err := ownedError("reseed", "g", []exactly.TP{a0}, nil, "busy"); err == nil || !strings.HasPrefix(err.Error(), "reseed refused: the pipeline is running: busy: it may") {
		t.Errorf("a rebalance alone refuses: got %v", err)
	}
}
