# SPDX-License-Identifier: Apache-2.0
# (integration fragment: owned by that area)

