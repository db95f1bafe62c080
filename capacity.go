package gatehouse

// A unit of a deployment's sku capacity, as Azure OpenAI's Standard quota
// counts it: 1,000 tokens and 6 requests a minute. The gateway enforces it
// (gateway/quota.go); the management API estimates with it what a
// workload needs (calculateModelCapacity).
const (
	CapacityTokensPerMinute   = 1000
	CapacityRequestsPerMinute = 6
)
