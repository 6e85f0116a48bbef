package mysql

// SetMaxStatementBytes sets the size a statement is kept under, and
// returns a function restoring it.
func SetMaxStatementBytes(n int) func() {
	old := maxStatementBytes
	maxStatementBytes = n
	return func() { maxStatementBytes = old }
}
