# frozen_string_literal: true

# What chef-client defines that the shipped cookbooks' libraries use when they load or when
# their handlers run: Chef::Config (its handler lists), Chef::Log and Chef::Handler. No Chef
# client package exists in any registry these machines reach, so these stand in, written
# after Chef Infra Client 17's lib/chef/handler.rb and run_status.rb: a handler's node,
# run_status, start_time, elapsed_time, exception, success? and failed? come from the run
# status it is given, and run_report_safely logs whatever the handler raises instead of
# raising it, as chef-client does. Required by chef_recorder.rb (which loads libraries) and
# chef_handler_harness.rb (which runs their handlers).

require 'forwardable'

# In Chef, Chef is a class: a library that opens it as a module fails there, and here.
class Chef
  # Chef::Config[...] and Chef::Config[...] = ...; the handler lists start empty.
  module Config
    @values = { start_handlers: [], report_handlers: [], exception_handlers: [] }

    def self.[](key)
      @values[key.to_sym]
    end

    def self.[]=(key, value)
      @values[key.to_sym] = value
    end
  end

  # Chef::Log.error(...) and the other levels: kept as [level, message] in Chef::Log.lines.
  module Log
    @lines = []

    class << self
      attr_reader :lines
    end

    %i(trace debug info warn error fatal).each do |level|
      define_singleton_method(level) { |message| @lines << [level.to_s, message] }
    end
  end

  # The base class of report and exception handlers.
  class Handler
    extend Forwardable

    attr_reader :run_status

    def_delegators :@run_status, :node, :start_time, :end_time, :elapsed_time, :exception,
                   :backtrace, :success?, :failed?

    def report; end

    def run_report_safely(run_status)
      @run_status = run_status
      report
    rescue Exception => e # rubocop:disable Lint/RescueException -- as chef-client does
      Chef::Log.error("Report handler #{self.class.name} raised #{e.inspect}")
    ensure
      @run_status = nil
    end
  end
end
