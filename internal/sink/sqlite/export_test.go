package sqlite

// SetUpsertRows sets how many rows an upsert statement carries at most,
// and returns a function restoring it.
func SetUpsertRows(n int) func() {
	old := upsertRows
	upsertRows = n
	return func() { upsertRows = old }
}
