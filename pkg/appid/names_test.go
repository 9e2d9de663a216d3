package appid

import "testing"

func TestNameSet(t *testing.T) {
	s := NewNameSet([]string{"hue.example", "*.tplinkcloud.com"})
	for name, want := range map[string]bool{
		"hue.example": true, "HUE.EXAMPLE.": true, "a.tplinkcloud.com": true, "a.b.tplinkcloud.com": true,
		"tplinkcloud.com": false, ".tplinkcloud.com": false, "xtplinkcloud.com": false, "hue.example.evil": false,
		"": false, "hue.example\x00": false, "hue .example": false, "a..tplinkcloud.com": false,
	} {
		if got := s.Match([]byte(name)); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { s.Match([]byte("A.TPLinkCloud.com")) }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}
