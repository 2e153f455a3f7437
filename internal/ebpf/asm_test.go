package ebpf

import (
	"strings"
	"testing"
)

func TestAssemble(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prog    []Asm
		wantOff []int16
		wantErr string
	}{
		{"forward jump", []Asm{J(Ja, 0, 0, 0, "end"), I(MovK, R0, 0, 0, 1), Label("end"), I(Exit, 0, 0, 0, 0)}, []int16{1, 0, 0}, ""},
		{"map load is two slots", append(append([]Asm{J(Ja, 0, 0, 0, "end")}, LoadMap(R1, 7)...), Label("end"), I(Exit, 0, 0, 0, 0)), []int16{2, 0, 0, 0}, ""},
		{"missing label", []Asm{J(Ja, 0, 0, 0, "nowhere")}, nil, `no label "nowhere"`},
		{"backward jump", []Asm{Label("top"), I(MovK, R0, 0, 0, 0), J(Ja, 0, 0, 0, "top")}, nil, "jump back"},
		{"label twice", []Asm{Label("a"), Label("a"), I(Exit, 0, 0, 0, 0)}, nil, "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Assemble(tc.prog)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.wantOff) {
				t.Fatalf("got %d instructions, want %d", len(got), len(tc.wantOff))
			}
			for i, in := range got {
				if in.Off != tc.wantOff[i] {
					t.Errorf("insn %d: got offset %d, want %d", i, in.Off, tc.wantOff[i])
				}
			}
		})
	}
}

func TestEncode(t *testing.T) {
	b := Encode([]Insn{{Code: MovK, Regs: R2 | R3<<4, Off: -2, Imm: 0x01020304}})
	want := []byte{0xb7, 0x32, 0xfe, 0xff, 0x04, 0x03, 0x02, 0x01}
	if string(b) != string(want) {
		t.Errorf("got % x, want % x", b, want)
	}
}
