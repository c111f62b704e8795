# frozen_string_literal: true

name 'ntp'
maintainer 'Crowbar Wizard'
license 'Apache-2.0'
description 'chrony: the NTP servers follow upstream and serve the site, every other node follows them'
version '1.0.0'
chef_version '>= 17'
%w(ubuntu debian redhat rocky almalinux).each do |platform|
  supports platform
end
