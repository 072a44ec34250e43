# SPDX-License-Identifier: Apache-2.0
# (bench fragment: owned by that area)

