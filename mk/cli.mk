# SPDX-License-Identifier: Apache-2.0
# (cli fragment: owned by that area)

