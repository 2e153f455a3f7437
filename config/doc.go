// Package config owns vxtun's configuration formats: flannel's net-conf.json,
// the node settings, the static peers file, and writing flannel's
// /run/flannel/subnet.env.
//
// Everything here is plain data and pure parsing with validation; errors name
// the file and the key (and, for JSON syntax errors, line and column). Values
// returned by the parsers are owned by the caller; the package keeps no state
// and is safe for concurrent use.
package config
