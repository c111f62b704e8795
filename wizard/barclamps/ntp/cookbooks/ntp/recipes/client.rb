# frozen_string_literal: true

# Every other node follows the site's NTP servers only, and serves no one.
chrony(sources: node['ntp']['servers'].to_a, serves: [])
