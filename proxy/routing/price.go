package routing

import "github.com/aisix/aisix/proxy/provider"

// Price is a direct model's price in USD per million tokens: prompt
// tokens, output tokens, and prompt tokens read from the provider's cache
// (CachedInput; when 0, cached tokens cost Input).
type Price struct {
	Input, Output, CachedInput float64
}

// Cost is u priced at p, in USD.
func (p *Price) Cost(u provider.Usage) float64 {
	cached := min(u.Cached, u.Input)
	cachedPrice := p.CachedInput
	if cachedPrice == 0 {
		cachedPrice = p.Input
	}
	return (float64(u.Input-cached)*p.Input + float64(cached)*cachedPrice + float64(u.Output)*p.Output) / 1e6
}
