package postgres

// SetCopyThreshold lets tests force either write path.
func SetCopyThreshold(n int) (restore func()) {
	old := copyThreshold
	copyThreshold = n
	return func() { copyThreshold = old }
}

// Text and CastType are how the apply statement sends and casts a value.
var (
	Text     = text
	CastType = castType
)
