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
				put(m, row, f, v)
			}
		}
		ch.Row = row
	}
	if ch.Key != nil && len(m.Rename) > 0 {
		k := make(map[string]any, len(ch.Key))
		for f, v := range ch.Key {
			put(m, k, f, v)
		}
		ch.Key = k
	}
	if ch.Schema != nil {
		// The decoder's slice may be shared between records: copy.
		fields := make([]Field, 0, len(ch.Schema))
		for _, f := range ch.Schema {
			if keep(f.Name) && !shadowed(m, f.Name, ch.Schema) {
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

// put sets field f's value under its column name. A field renamed to a
// column wins over a field of that very name (rename: {new_price: price}
// with both present writes new_price), in whichever order the map gives
// them: it was one or the other at random.
func put(m *ColumnMapping, row map[string]any, f string, v any) {
	col := renamed(m, f)
	if col == f {
		for from, to := range m.Rename {
			if to == f && from != f {
				if _, ok := row[f]; ok {
					return // the renamed field is in already
				}
			}
		}
	}
	row[col] = v
}

// shadowed reports whether schema field name is dropped because another
// field present in the schema is renamed to it.
func shadowed(m *ColumnMapping, name string, fields []Field) bool {
	if renamed(m, name) != name {
		return false
	}
	for _, f := range fields {
		if f.Name != name && renamed(m, f.Name) == name {
			return true
		}
	}
	return false
}
