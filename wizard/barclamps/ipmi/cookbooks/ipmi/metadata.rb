# frozen_string_literal: true

name 'ipmi'
maintainer 'Crowbar Wizard'
license 'Apache-2.0'
description 'The BMC\'s LAN settings (static address, netmask, gateway, VLAN) set in-band with ipmitool'
version '1.0.0'
chef_version '>= 17'
%w(ubuntu debian redhat rocky almalinux).each do |platform|
  supports platform
end
