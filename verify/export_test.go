package verify

// SetPageRows changes how many ledger rows a page holds, for tests; it
// returns a func restoring the default.
func SetPageRows(n int64) func() {
	old := pageRows
	pageRows = n
	return func() { pageRows = old }
}
