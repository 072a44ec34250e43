/* SPDX-License-Identifier: Apache-2.0 */
/*
 * When to write the advisor status (see report-policy.h). Pure.
 */
#include "report-policy.h"

int64_t
cluster__report_interval_for(const cluster__report_policy *p, size_t n)
{
	int64_t base = p->interval_ms > 0 ? p->interval_ms : 1000;
	double stretched;

	if(p->writes_per_second <= 0.0)
	{
		return base;
	}
	/* n members each writing once per interval must stay within the budget */
	stretched = (double) n * 1000.0 / p->writes_per_second;
	if(stretched > 86400000.0)
	{
		stretched = 86400000.0;
	}
	return (int64_t) stretched > base ? (int64_t) stretched : base;
}

int64_t
cluster__report_due(const cluster__report_policy *p, const cluster__report_sample *last,
	const cluster__report_sample *cur, size_t n, int forced, int64_t now_ms)
{
	if(!last->valid)
	{
		return now_ms;
	}
	if(!forced && cur->load == last->load && cur->capacity == last->capacity)
	{
		return INT64_MAX;
	}
	return last->at_ms + cluster__report_interval_for(p, n);
}
