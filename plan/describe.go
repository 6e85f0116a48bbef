package plan

import (
	"sort"
	"strings"

	"github.com/exactly/exactly"
)

// DescribeKey says which columns key a table rule and where they come from.
func DescribeKey(r *exactly.TableRule) string {
	if r.Mode == "append" {
		return "none (append)"
	}
	k := "[" + strings.Join(r.Key, ", ") + "]"
	if len(r.Key) == 0 {
		k = "the record key's fields"
	}
	switch r.KeyFrom {
	case "record_key":
		return k + " from the record key"
	case "value":
		return k + " from the value"
	}
	return k + " from the record key when it is a JSON object, else from the value"
}

// DescribeColumns says how a rule maps fields to columns, and whether
// create and evolve are on.
func DescribeColumns(r *exactly.TableRule) string {
	m := r.Columns
	var parts []string
	if len(m.Include) > 0 {
		parts = append(parts, "include ["+strings.Join(m.Include, ", ")+"]")
	}
	if len(m.Exclude) > 0 {
		parts = append(parts, "exclude ["+strings.Join(m.Exclude, ", ")+"]")
	}
	if len(m.Rename) > 0 {
		var rn []string
		for f, c := range m.Rename {
			rn = append(rn, f+" → "+c)
		}
		sort.Strings(rn)
		parts = append(parts, "rename "+strings.Join(rn, ", "))
	}
	if len(parts) == 0 {
		parts = append(parts, "every field to the column of the same name")
	}
	evolve := "evolve off: fields without a column are ignored"
	switch r.Evolve {
	case "widen":
		evolve = "evolve widen: fields without a column become nullable columns, and an integer column widens to float, decimal or text when a value needs it"
	case "":
	default:
		evolve = "evolve " + r.Evolve + ": fields without a column become nullable columns"
	}
	create := "create off"
	if r.Create {
		create = "create on"
	}
	return strings.Join(parts, "; ") + " · " + create + " · " + evolve
}

// DescribeTypes says where the types of the columns create and evolve
// make come from, and whether they depend on where batches were cut.
func DescribeTypes(r *exactly.TableRule) string {
	schema := "from the record schema when it has one; "
	if r.Version != "" {
		schema = "version column " + r.Version + " seen only as null or not at all: an integer column; other columns " + schema
	}
	if r.Evolve == "widen" {
		return schema + "otherwise inferred from the values in the order they were read, an integer column widened (never narrowed) when a later value needs float, decimal or text, a value no widening fits dead-lettered: the same stream gives the same types wherever batches are cut"
	}
	return schema + "otherwise inferred from the values of the first batch that makes the column: they depend on where batches were cut (a stray \"abc\" in it makes text what would be bigint); evolve: widen makes them not"
}
