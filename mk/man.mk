# SPDX-License-Identifier: Apache-2.0
# Manual pages, hand-written roff (man(7) macros only). Section 3 has one
# page per group of calls (libcluster.3 is the overview); every other
# exported name is a one-line ".so man3/<group>.3" page, so that
# "man <function>" works for each of them. cluster-gateway.1 is installed
# by mk/gateway.mk. tests/check-manpages.sh keeps this list, man/ and
# tests/exports.txt in step.
dist_man_MANS += \
	man/cluster-test.1 \
	man/libcluster.3 \
	man/cluster_advice.3 \
	man/cluster_advisor_config_init.3 \
	man/cluster_copy_env.3 \
	man/cluster_copy_instance.3 \
	man/cluster_copy_key.3 \
	man/cluster_copy_partition.3 \
	man/cluster_create.3 \
	man/cluster_destroy.3 \
	man/cluster_env.3 \
	man/cluster_errmsg.3 \
	man/cluster_index.3 \
	man/cluster_instance.3 \
	man/cluster_join.3 \
	man/cluster_join_passive.3 \
	man/cluster_key.3 \
	man/cluster_leave.3 \
	man/cluster_members.3 \
	man/cluster_members_free.3 \
	man/cluster_owned_shards.3 \
	man/cluster_partition.3 \
	man/cluster_peers.3 \
	man/cluster_pick_target.3 \
	man/cluster_plan.3 \
	man/cluster_plan_free.3 \
	man/cluster_redirects_free.3 \
	man/cluster_report.3 \
	man/cluster_reset_instance.3 \
	man/cluster_set_address.3 \
	man/cluster_set_advisor.3 \
	man/cluster_set_advisor_config.3 \
	man/cluster_set_balancer.3 \
	man/cluster_set_credentials.3 \
	man/cluster_set_env.3 \
	man/cluster_set_instance.3 \
	man/cluster_set_logger.3 \
	man/cluster_set_logger2.3 \
	man/cluster_set_partition.3 \
	man/cluster_set_registry.3 \
	man/cluster_set_settle.3 \
	man/cluster_set_shard_callback.3 \
	man/cluster_set_shard_settle.3 \
	man/cluster_set_shards.3 \
	man/cluster_set_threads.3 \
	man/cluster_set_timeouts.3 \
	man/cluster_set_tls.3 \
	man/cluster_set_ttl.3 \
	man/cluster_set_userdata.3 \
	man/cluster_set_verbose.3 \
	man/cluster_set_workers.3 \
	man/cluster_shard_owner.3 \
	man/cluster_shards.3 \
	man/cluster_shards_free.3 \
	man/cluster_state.3 \
	man/cluster_static_set_index.3 \
	man/cluster_static_set_total.3 \
	man/cluster_total.3 \
	man/cluster_ttl.3 \
	man/cluster_userdata.3 \
	man/cluster_version.3 \
	man/cluster_view_fresh.3 \
	man/cluster_workers.3

# Every exported function has a page, every page renders without a groff
# warning, and cluster-test(1) names every option of cluster-test --help.
TESTS += tests/check-manpages.sh
EXTRA_DIST += tests/check-manpages.sh
