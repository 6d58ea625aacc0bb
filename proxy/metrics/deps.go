package metrics

import "github.com/prometheus/client_golang/prometheus"

// depsCollector reads the dependencies' state at scrape time: one series
// per registered dependency (a handful), so the label set is bounded.
type depsCollector struct{ m *Metrics }

var (
	depUpDesc = prometheus.NewDesc(ns+"_dependency_up",
		"1 while a dependency (store, redis) answers, 0 while it is unreachable (the store: the last snapshot keeps serving).",
		[]string{"dependency"}, nil)
	depSinceDesc = prometheus.NewDesc(ns+"_dependency_since_timestamp_seconds",
		"When a dependency entered its current state (up or unreachable), in Unix seconds.",
		[]string{"dependency"}, nil)
	storeContactDesc = prometheus.NewDesc(ns+"_store_last_contact_age_seconds",
		"Seconds since the store last answered a revision probe or a configuration load (0 before the first).", nil, nil)
)

func (dc *depsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- depUpDesc
	ch <- depSinceDesc
	ch <- storeContactDesc
}

func (dc *depsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range dc.m.deps.States() {
		up := 0.0
		if st.OK() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(depUpDesc, prometheus.GaugeValue, up, st.Name)
		if !st.Since.IsZero() {
			ch <- prometheus.MustNewConstMetric(depSinceDesc, prometheus.GaugeValue, float64(st.Since.UnixMilli())/1000, st.Name)
		}
	}
	if t := dc.m.table; t != nil {
		ch <- prometheus.MustNewConstMetric(storeContactDesc, prometheus.GaugeValue, t.SinceLastLoad().Seconds())
	}
}
