package sqlserver

import (
	"fmt"
	"unicode/utf8"
)

// CheckColumnName implements exactly.ColumnNamer: a name is a sysname,
// at most 128 characters.
func (*Dialect) CheckColumnName(name string) error {
	if n := utf8.RuneCountInString(name); n > 128 {
		return fmt.Errorf("it is %d characters long and SQL Server allows at most 128", n)
	}
	return nil
}
