"""happybase helpers: the decisions tables' layout, batch writes, audit scans and the connection pool."""
