package exactly

// mapColumns applies a rule's column mapping to a decoded change, in
// place: fields not in include (when include is set) or in exclude are
// dropped from the row and the schema, then fields are renamed. Key
// fields are renamed too and never dropped: a key column named in key: is
// kept even when include leaves it out. Fields the table has no column
// for are dealt with later (ignored, or added by evolve).
func mapColumns(m *ColumnMapping, key []string, ch *Change) {
	if len(m.Include) == 0 && len(m.Exclude) == 0 && len(m.Rename) == 0 {
		return
	}
	keep := func(field string) bool {
		col := renamed(m, field)
		for _, k := range key {
			if k == col {
				return true
			}
		}
		for _, x := range m.Exclude {
			if x == field {
				return false
			}
		}
		if len(m.Include) == 0 {
			return true
		}
		for _, in := range m.Include {
			if in == field {
				return true
			}
		}
		return false
	}
	if ch.Row != nil {
		row := make(map[string]any, len(ch.Row))
		for f, v := range ch.Row {
			if keep(f) {
				row[renamed(m, f)] = v
			}
		}
		ch.Row = row
	}
	if ch.Key != nil && len(m.Rename) > 0 {
		k := make(map[string]any, len(ch.Key))
		for f, v := range ch.Key {
			k[renamed(m, f)] = v
		}
		ch.Key = k
	}
	if ch.Schema != nil {
		// The decoder's slice may be shared between records: copy.
		fields := make([]Field, 0, len(ch.Schema))
		for _, f := range ch.Schema {
			if keep(f.Name) {
				f.Name = renamed(m, f.Name)
				fields = append(fields, f)
			}
		}
		ch.Schema = fields
	}
}

func renamed(m *ColumnMapping, field string) string {
	if c, ok := m.Rename[field]; ok && c != "" {
		return c
	}
	return field
}
