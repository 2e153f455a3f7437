package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// ErrUnsupportedBackend is wrapped by the error for a flannel backend type
// vxtun does not implement (wireguard, ipip, ...).
var ErrUnsupportedBackend = errors.New("backend type not supported by vxtun")

// Error is a configuration error. It names the file, the key (a dotted path
// such as "Backend.VNI" or "Peers[2].VtepMAC") and, for JSON syntax and type
// errors, the 1-based line and column. Its text is
// "file:line:col: key: message" with empty parts left out.
type Error struct {
	File string
	Line int // 0 when unknown
	Col  int
	Key  string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// keyErr builds an *Error for key in file.
func keyErr(file, key string, format string, args ...any) *Error {
	return &Error{File: file, Key: key, Err: fmt.Errorf(format, args...)}
}

// lineCol converts a byte offset in data into a 1-based line and column
// (column counted in bytes).
func lineCol(data []byte, off int) (line, col int) {
	if off < 0 {
		off = 0
	}
	if off > len(data) {
		off = len(data)
	}
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = off - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// valueStart walks back from end (the offset just past a JSON scalar, as
// json.UnmarshalTypeError reports it) to the offset where that value begins.
func valueStart(data []byte, end int) int {
	if end > len(data) {
		end = len(data)
	}
	if end <= 0 {
		return 0
	}
	i := end - 1
	if data[i] == '"' {
		for j := i - 1; j >= 0; j-- {
			if data[j] != '"' {
				continue
			}
			bs := 0
			for k := j - 1; k >= 0 && data[k] == '\\'; k-- {
				bs++
			}
			if bs%2 == 0 {
				return j
			}
		}
		return 0
	}
	for i > 0 && !bytes.ContainsRune([]byte(" \t\r\n,:[{"), rune(data[i-1])) {
		i--
	}
	return i
}

// decodeJSON unmarshals data into v (a pointer to a struct) and converts
// encoding/json errors into *Error with the file, key, line and column. With
// strict set, keys that v has no field for are errors (our own formats);
// flannel's net-conf.json is decoded leniently as flannel does.
func decodeJSON(file string, data []byte, v any, strict bool) error {
	if strict && decodeStrictOnce(data, v) {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return jsonError(file, data, err)
	}
	if !strict {
		return nil
	}
	fresh := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(fresh); err != nil {
		const prefix = `json: unknown field "`
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, prefix); ok {
			name = strings.TrimSuffix(name, `"`)
			e := &Error{File: file, Key: name, Err: errors.New("unknown key")}
			if off := keyOffset(data, name); off >= 0 {
				e.Line, e.Col = lineCol(data, off)
			}
			return e
		}
		return jsonError(file, data, err)
	}
	return nil
}

// decodeStrictOnce decodes data into v in one strict pass and reports
// whether that succeeded with nothing but white space after the value: the
// common case, which then costs one decode instead of two. On false, v may
// be partly filled; decodeJSON decodes again, so its errors keep their order.
func decodeStrictOnce(data []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if dec.Decode(v) != nil {
		return false
	}
	return len(bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")) == 0
}

// keyOffset finds the first place name occurs as an object key in data, or -1.
func keyOffset(data []byte, name string) int {
	quoted, _ := json.Marshal(name)
	from := 0
	for {
		i := bytes.Index(data[from:], quoted)
		if i < 0 {
			return -1
		}
		i += from
		rest := bytes.TrimLeft(data[i+len(quoted):], " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			return i
		}
		from = i + 1
	}
}

func jsonError(file string, data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off := int(se.Offset) - 1 // Offset counts the offending byte
		if se.Offset >= int64(len(data)) && strings.Contains(se.Error(), "end of JSON input") {
			off = len(data)
		}
		line, col := lineCol(data, off)
		return &Error{File: file, Line: line, Col: col, Err: fmt.Errorf("JSON syntax error: %s", se.Error())}
	case errors.As(err, &te):
		line, col := lineCol(data, valueStart(data, int(te.Offset)))
		key := te.Field
		if te.Struct == "" && key == "" {
			key = "(top level)"
		}
		return &Error{File: file, Line: line, Col: col, Key: key,
			Err: fmt.Errorf("wrong type: got JSON %s, want %s", te.Value, jsonKind(te.Type))}
	}
	return &Error{File: file, Err: fmt.Errorf("decode JSON: %w", err)}
}

// jsonKind names a Go type the way a config author thinks of it.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("integer (%s)", t.Kind())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("non-negative integer (%s)", t.Kind())
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return t.String()
}
