package limit

import "time"

// PeriodStart returns the start of the period p that contains t, in UTC.
func PeriodStart(p Period, t time.Time) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	switch p {
	case PeriodWeek:
		// Monday is day 0 of the week.
		back := (int(t.Weekday()) + 6) % 7
		return time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
	case PeriodMonth:
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	default:
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
}

// NextPeriodStart returns the start of the period after the one that
// contains t: when a spent budget of period p frees again.
func NextPeriodStart(p Period, t time.Time) time.Time {
	s := PeriodStart(p, t)
	switch p {
	case PeriodWeek:
		return s.AddDate(0, 0, 7)
	case PeriodMonth:
		return s.AddDate(0, 1, 0)
	default:
		return s.AddDate(0, 0, 1)
	}
}

var periods = [3]Period{PeriodDay, PeriodWeek, PeriodMonth}

func periodIndex(p Period) int {
	switch p {
	case PeriodWeek:
		return 1
	case PeriodMonth:
		return 2
	default:
		return 0
	}
}
