# frozen_string_literal: true

require 'time' # Time#iso8601

# Records every chef-client run in the node's own object, where crowbar-wizard reads it
# back from the Chef server (wizard/chef/converge.py, read_run):
#
#   normal['crowbar']['converge']['last'] = {
#     'request' => the id the engine put at normal['crowbar']['converge']['request'], as
#                  this run loaded it with its node,
#     'status' => 'success' | 'failed', 'started' => ISO 8601 in UTC, 'elapsed' => seconds,
#     'error' => what failed, or nil, 'run_list' => ['role[...]', ...] }
#
# The engine believes this record only: a node that saved none for its request did not
# converge, whatever chef-client's exit status said. A run that fails before its cookbooks
# are loaded (no server, a cookbook missing) records nothing, as this handler is not
# installed yet; the engine then says the node recorded no run for the request.
module CrowbarDeployer
  # A report handler (a successful run) and an exception handler (a failed one).
  class ConvergeStatus < Chef::Handler
    # Installs the handler for the runs to come, once: libraries are loaded on every run, and
    # again in the same process by a chef-client that does not fork. A handler registered
    # twice would record and save twice.
    def self.register
      %i(report_handlers exception_handlers).each do |list|
        handlers = Array(Chef::Config[list])
        Chef::Config[list] = handlers + [new] unless handlers.any?(self)
      end
    end

    def report
      return if node.nil? # failed before its node was loaded: nothing to record it in

      request = node['crowbar']&.dig('converge', 'request')
      # No request: nobody asked for this run (an operator's by hand, or the timer's before
      # the engine ever converged this node), so there is nothing to answer. The engine
      # always sets one before it starts chef-client. Not saving also leaves a failed run's
      # node as chef-client leaves it: unsaved, whatever half a run put in it.
      if request.nil?
        Chef::Log.info('crowbar: this node holds no converge request: the run is not recorded')
        return
      end

      node.normal['crowbar']['converge']['last'] = record(request)
      save
    end

    private

    def record(request)
      {
        'request' => request,
        'status' => run_status.success? ? 'success' : 'failed',
        # getutc, not utc: utc would turn the run's own start time into UTC in place
        'started' => run_status.start_time.getutc.iso8601,
        'elapsed' => run_status.elapsed_time.to_f,
        'error' => error,
        'run_list' => node.run_list.to_a.map(&:to_s)
      }
    end

    # The failure as chef-client words it ("Class: message"), cut to 2000 characters: a
    # compile error can quote pages of a template, and the node object carries the record
    # on every save. (A method, not a constant: a library loaded again in one process
    # would warn that the constant was already initialized.)
    def error
      message = run_status.formatted_exception
      return message if message.nil? || message.length <= 2000

      "#{message[0, 1990]} [cut]..."
    end

    # On success chef-client saved the node before the report handlers ran, so the record
    # needs a save of its own; on failure chef-client saves nothing, and this save is the
    # only record (it also keeps what the failed run set in the node before it failed). A
    # failed save is logged, never raised: a handler must not change the run's own outcome
    # (and the engine then says the node recorded no run).
    def save
      node.save
    rescue StandardError => e
      Chef::Log.error("crowbar: could not save the record of this run in node #{node.name}: " \
                      "#{e.class}: #{e.message}")
    end
  end
end

CrowbarDeployer::ConvergeStatus.register
