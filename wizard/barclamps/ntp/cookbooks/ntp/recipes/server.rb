# frozen_string_literal: true

# An NTP server of the site: follows the upstream servers (when the site has any) and
# serves every network of the site. It keeps serving when upstream is unreachable (a site
# without internet is common), so the nodes still agree with each other. A site whose
# upstream is one of its own servers must not make that server follow itself.
chrony(
  sources: node['ntp']['upstream'].to_a - node['crowbar']['network'].values,
  serves: node['crowbar']['networks'].values.map { |net| net['cidr'] }.uniq.sort
)
