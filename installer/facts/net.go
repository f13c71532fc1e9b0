package facts

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// collectDisks stats each target path, or its nearest existing parent when it does not exist yet.
func (c *collector) collectDisks(f *Facts) {
	f.Disks = []Disk{}
paths:
	for _, p := range dedupe(c.o.Paths) {
		p = filepath.Join("/", p)
		d := Disk{Path: p, StatPath: p}
		for {
			_, err := os.Stat(c.path(d.StatPath))
			if err == nil {
				d.Exists = d.StatPath == p
				break
			}
			// ENOTDIR: a component is a file, so the path cannot exist as a directory either.
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
				c.warn("disk %s: %v", p, err)
				f.Disks = append(f.Disks, d)
				continue paths
			}
			if d.StatPath == "/" {
				break
			}
			d.StatPath = filepath.Dir(d.StatPath)
		}
		free, total, dev, err := fsInfo(c.path(d.StatPath))
		if err != nil {
			c.warn("disk %s: %v", p, err)
		}
		d.FreeBytes, d.TotalBytes, d.Device = free, total, dev
		f.Disks = append(f.Disks, d)
	}
}

// collectNetwork fills IPs, DefaultInterface and DefaultIP.
func (c *collector) collectNetwork(f *Facts) {
	f.IPs = []string{}
	if b, err := os.ReadFile(c.path("/proc/net/route")); err == nil {
		f.DefaultInterface = defaultRouteInterface(b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		c.warn("read routes: %v", err)
	}

	list := c.o.interfaces
	if list == nil {
		if !c.real {
			c.warn("interfaces: only known for the root /, not %s", c.o.Root)
			return
		}
		list = systemInterfaces
	}
	ifaces, err := list()
	if err != nil {
		c.warn("interfaces: %v", err)
		return
	}
	var v4, v6 []netip.Addr
	for _, i := range ifaces {
		for _, a := range i.Addrs {
			a = a.Unmap()
			if i.Name == f.DefaultInterface && a.Is4() && f.DefaultIP == "" {
				f.DefaultIP = a.String()
			}
			if i.Loopback || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() || !a.IsValid() {
				continue
			}
			if a.Is4() {
				v4 = append(v4, a)
			} else {
				v6 = append(v6, a.WithZone(""))
			}
		}
	}
	for _, group := range [][]netip.Addr{v4, v6} {
		slices.SortFunc(group, netip.Addr.Compare)
		for _, a := range slices.Compact(group) {
			f.IPs = append(f.IPs, a.String())
		}
	}
}

// systemInterfaces lists the running system's interfaces.
func systemInterfaces() ([]iface, error) {
	nis, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []iface
	for _, ni := range nis {
		addrs, err := ni.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ni.Name, err)
		}
		i := iface{Name: ni.Name, Loopback: ni.Flags&net.FlagLoopback != 0}
		for _, a := range addrs {
			var ip net.IP
			switch v := a.(type) {
			case *net.IPNet:
				ip = v.IP
			case *net.IPAddr:
				ip = v.IP
			}
			if na, ok := netip.AddrFromSlice(ip); ok {
				i.Addrs = append(i.Addrs, na.Unmap())
			}
		}
		out = append(out, i)
	}
	return out, nil
}

// defaultRouteInterface is the interface of the up IPv4 default route with the lowest metric in /proc/net/route.
func defaultRouteInterface(route []byte) string {
	best, bestMetric := "", uint64(math.MaxUint64)
	sc := bufio.NewScanner(bytes.NewReader(route))
	for n := 1; sc.Scan(); n++ {
		// Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT
		fl := strings.Fields(sc.Text())
		if n == 1 || len(fl) < 8 || fl[1] != "00000000" || fl[7] != "00000000" {
			continue
		}
		flags, err := strconv.ParseUint(fl[3], 16, 32)
		if err != nil || flags&0x1 == 0 { // RTF_UP
			continue
		}
		metric, err := strconv.ParseUint(fl[6], 10, 64)
		if err != nil {
			continue
		}
		if metric < bestMetric {
			best, bestMetric = fl[0], metric
		}
	}
	return best
}

// collectListening parses /proc/net/{tcp,tcp6,udp,udp6} for listening TCP and unconnected UDP sockets.
func (c *collector) collectListening(f *Facts) {
	f.Listening = []Port{}
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile(c.path("/proc/net/" + proto))
		if errors.Is(err, fs.ErrNotExist) {
			continue // no IPv6, or a fake root without it
		}
		if err != nil {
			c.warn("read %s sockets: %v", proto, err)
			continue
		}
		ports, err := parseSockets(proto, b)
		if err != nil {
			c.warn("read %s sockets: %v", proto, err)
		}
		f.Listening = append(f.Listening, ports...)
	}
	slices.SortFunc(f.Listening, func(a, b Port) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Addr, b.Addr))
	})
	f.Listening = slices.Compact(f.Listening)
}

// parseSockets returns the listening sockets in one /proc/net/{tcp,udp}[6] table: TCP in state LISTEN (0A),
// UDP in state CLOSE (07), which is how the kernel shows an unconnected socket.
func parseSockets(proto string, b []byte) ([]Port, error) {
	want := "0A"
	if strings.HasPrefix(proto, "udp") {
		want = "07"
	}
	var out []Port
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		// sl local_address rem_address st ...
		fl := strings.Fields(sc.Text())
		if n == 1 || len(fl) < 4 || fl[3] != want {
			continue
		}
		addr, port, err := parseHexAddrPort(fl[1])
		if err != nil {
			return out, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, Port{Proto: proto, Addr: addr.String(), Port: port})
	}
	return out, nil
}

// parseHexAddrPort decodes "0100007F:1F90" or a 32-hex-digit IPv6 address: the kernel prints each 32-bit word
// of the address in host byte order (little-endian on every arch we ship), the port in big-endian hex.
func parseHexAddrPort(s string) (netip.Addr, int, error) {
	hexAddr, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, fmt.Errorf("bad socket address %q", clip(s))
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("bad port in %q", clip(s))
	}
	raw, err := hex.DecodeString(hexAddr)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.Addr{}, 0, fmt.Errorf("bad address in %q", clip(s))
	}
	for w := 0; w < len(raw); w += 4 {
		slices.Reverse(raw[w : w+4])
	}
	a, _ := netip.AddrFromSlice(raw)
	return a.Unmap(), int(port), nil
}
