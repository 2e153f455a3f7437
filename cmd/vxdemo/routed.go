package main

import "fmt"

// checkBackend checks the -backend and -direct-routing flags.
func (c *Config) checkBackend() error {
	switch c.Backend {
	case "", "vxlan":
	case "host-gw":
		if c.DirectRouting {
			return fmt.Errorf("-direct-routing is a vxlan option; host-gw routes every peer directly anyway")
		}
	default:
		return fmt.Errorf("-backend %q: want vxlan or host-gw", c.Backend)
	}
	return nil
}
