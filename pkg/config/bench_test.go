package config

import (
	"fmt"
	"strings"
	"testing"
)

// largePolicyText writes a policy with n devices in 100 groups and n allow
// rules, the size of a large site.
func largePolicyText(n int) string {
	var b strings.Builder
	b.WriteString("[[zone]]\nname = \"wan\"\nnetworks = [\"0.0.0.0/0\"]\n\n[[zone]]\nname = \"iot\"\nnetworks = [\"10.0.0.0/8\"]\n\n")
	b.WriteString("[[segment]]\nfrom = \"iot\"\nto = \"wan\"\naction = \"micro\"\n\n")
	for g := 0; g < 100; g++ {
		fmt.Fprintf(&b, "[[group]]\nname = \"g%d\"\n\n", g)
	}
	for d := 0; d < n; d++ {
		fmt.Fprintf(&b, "[[device]]\nname = \"d%d\"\nmac = \"02:00:00:%02x:%02x:%02x\"\nip = [\"10.%d.%d.%d\"]\ngroups = [\"g%d\"]\n\n",
			d, d>>16&0xff, d>>8&0xff, d&0xff, d>>16&0xff, d>>8&0xff, d&0xff, d%100)
	}
	for r := 0; r < n; r++ {
		fmt.Fprintf(&b, "[[allow]]\nname = \"r%d\"\nfrom = \"device:d%d\"\nto = \"zone:wan\"\nservices = [\"tcp/%d\", \"udp/%d-%d\"]\n\n",
			r, r%n, 1000+r%5000, 2000+r%3000, 2010+r%3000)
	}
	return b.String()
}

func BenchmarkParseLarge(b *testing.B) {
	src := []byte(largePolicyText(10000))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse("large.toml", src); err != nil {
			b.Fatal(err)
		}
	}
}
