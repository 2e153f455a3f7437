// Package nodetest holds the one sample of the node's metrics that the
// tests of /metrics use: the node's own (the collector, parsed with expfmt)
// and cmd/vxtun's ("vxtun stats", parsed with its own reader). Sample is a
// snapshot with every field and label kind set; Values is what /metrics
// must show for it, keyed "name/peer/reason" (the label values present, in
// that order); CheckValues compares a parsed scrape with Values.
//
// Imports: node, dataplane. Test code only: nothing outside tests imports
// it. Values returned are fresh copies; nothing is shared.
package nodetest
