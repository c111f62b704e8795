# frozen_string_literal: true

name 'bios'
maintainer 'Crowbar Wizard'
license 'Apache-2.0'
description 'The BIOS profile (boot mode, power profile, virtualization) through Dell\'s racadm, where it is installed'
version '1.0.0'
chef_version '>= 17'
%w(ubuntu debian redhat rocky almalinux).each do |platform|
  supports platform
end
