package membership

import "context"

// Join contacts seeds again after Start, e.g. to merge with a coordinator
// that was restarted at a seed address as a new cluster. Seeds that are
// this node are skipped; a refusal by any seed is returned as a
// *RefusedError.
func (g *Gossip) Join(ctx context.Context, seeds []string) error { return g.rejoin(ctx, seeds) }
